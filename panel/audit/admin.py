from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["time", "username", "action", "object_type", "object_repr", "source", "source_ip"]
    list_filter = ["action", "source", "object_type"]
    search_fields = ["username", "object_repr", "message", "request_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the record is append-only
