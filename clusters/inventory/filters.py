"""Server filters, shared by the server list page and GET /api/servers/."""

import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clusters.models import Group, Server

STATE_CHOICES = [("reachable", _("Reachable")), ("unreachable", _("Unreachable")), ("unknown", _("Never probed"))]


class ServerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label=_("Search"))
    group = django_filters.ModelChoiceFilter(queryset=Group.objects.only("pk", "name"), to_field_name="name", method="filter_group", label=_("Group"))
    label = django_filters.CharFilter(method="filter_label", label=_("Label"), help_text=_("key=value, or key alone"))
    state = django_filters.ChoiceFilter(choices=STATE_CHOICES, method="filter_state", label=_("State"))

    class Meta:
        model = Server
        fields = ["q", "group", "label", "state"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(address__icontains=value))

    def filter_group(self, queryset, name, group):
        if group is None:
            return queryset
        # A group includes its child groups' servers, as in Ansible.
        ids, frontier = {group.pk}, {group.pk}
        links = list(Group.children.through.objects.values_list("from_group_id", "to_group_id"))
        while frontier:
            frontier = {child for parent, child in links if parent in frontier} - ids
            ids |= frontier
        return queryset.filter(pk__in=Server.groups.through.objects.filter(group_id__in=ids).values("server_id"))

    def filter_label(self, queryset, name, value):
        key, sep, wanted = value.partition("=")
        key = key.strip()
        if not key:
            return queryset
        if sep:
            return queryset.filter(labels__contains={key: wanted.strip()}) if _json_contains_supported(queryset) else queryset.filter(**{f"labels__{key}": wanted.strip()})
        return queryset.filter(labels__has_key=key)

    def filter_state(self, queryset, name, value):
        if value == "reachable":
            return queryset.filter(reachable=True)
        if value == "unreachable":
            return queryset.filter(reachable=False)
        return queryset.filter(reachable__isnull=True)


def _json_contains_supported(queryset):
    from django.db import connections

    return connections[queryset.db].features.supports_json_field_contains
