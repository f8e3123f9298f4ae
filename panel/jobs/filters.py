import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from panel.lib.filters import ChoicesFilter, DateOrDateTimeFilter

from .kinds import kind_choices
from .models import Job, Status


class JobFilter(django_filters.FilterSet):
    """Shared by the job list page and GET /api/jobs/."""

    status = ChoicesFilter(choices=Status.choices, label=_("Status"))
    kind = django_filters.ChoiceFilter(choices=kind_choices, label=_("Kind"), empty_label=_("Any kind"))
    user = django_filters.CharFilter(field_name="user__username", label=_("User"))
    target = django_filters.CharFilter(method="filter_target", label=_("Target"))
    created_after = DateOrDateTimeFilter(field_name="created_at", lookup_expr="gte", label=pgettext_lazy("date range", "From"))
    created_before = DateOrDateTimeFilter(field_name="created_at", lookup_expr="lt", end_of_day=True, label=pgettext_lazy("date range", "To"))

    class Meta:
        model = Job
        fields = ["status", "kind", "user", "target"]

    def filter_target(self, queryset, name, value):
        # "server:12" matches a target exactly; anything else searches the target's name.
        if ":" in value:
            model, _, pk = value.partition(":")
            return queryset.filter(target_type__model=model.lower(), target_id=pk)
        return queryset.filter(Q(target_repr__icontains=value))


def user_choices():
    return get_user_model().objects.order_by("username").values_list("username", "username")
