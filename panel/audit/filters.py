import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from panel.lib.filters import ChoicesFilter, DateOrDateTimeFilter

from .models import Action, AuditEvent


class AuditFilter(django_filters.FilterSet):
    user = django_filters.CharFilter(field_name="username", label=_("User"))
    action = ChoicesFilter(choices=Action.choices, label=_("Action"))
    object_type = django_filters.CharFilter(field_name="object_type__model", label=_("Object type"))
    object_id = django_filters.CharFilter(label=_("Object id"))
    request_id = django_filters.CharFilter(label=_("Request id"))
    since = DateOrDateTimeFilter(field_name="time", lookup_expr="gte", label=pgettext_lazy("date range", "From"))
    until = DateOrDateTimeFilter(field_name="time", lookup_expr="lt", end_of_day=True, label=pgettext_lazy("date range", "To"))
    q = django_filters.CharFilter(method="search", label=_("Search"))

    class Meta:
        model = AuditEvent
        fields = ["user", "action", "object_type", "object_id", "request_id"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(object_repr__icontains=value) | Q(message__icontains=value) | Q(username__icontains=value))
