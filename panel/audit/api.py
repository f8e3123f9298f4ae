from rest_framework import generics, serializers

from panel.accounts.access import HasRole

from .filters import AuditFilter
from .models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    object_type = serializers.CharField(source="object_type.model", default=None)

    class Meta:
        model = AuditEvent
        fields = ["id", "time", "username", "action", "object_type", "object_id", "object_repr", "before", "after", "message", "source", "source_ip", "request_id"]


class AuditEventList(generics.ListAPIView):
    """The audit log (admins only), newest first."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditFilter
    permission_classes = [HasRole.for_("is_admin")]

    def get_queryset(self):
        return AuditEvent.objects.visible_to(self.request.user).select_related("object_type")
