from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from panel.accounts.access import get_visible_or_404, role_required

from .filters import AuditFilter
from .models import AuditEvent


@login_required
@role_required("is_admin")
@require_GET
def audit_list(request):
    events = AuditEvent.objects.visible_to(request.user).select_related("object_type")
    audit_filter = AuditFilter(request.GET, queryset=events)
    page = Paginator(audit_filter.qs, 50).get_page(request.GET.get("page"))
    return render(request, "audit/list.html", {"filter": audit_filter, "page": page})


@login_required
@role_required("is_admin")
@require_GET
def audit_detail(request, pk):
    event = get_visible_or_404(AuditEvent, request.user, pk=pk)
    return render(request, "audit/detail.html", {"event": event})
