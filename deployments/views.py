"""Service pages: list, create/edit, detail with live state and rollout progress, the
actions (deploy, scale, rollback, restart, stop, remove, logs, stats) and compose import.

Views read the database and start jobs; the live parts are htmx partials polled by the
page (`service_live.html`), which stop polling themselves when nothing is moving.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import ValidationError

from panel.accounts.access import get_visible_or_404, role_required
from panel.jobs.models import Job
from panel.jobs.services import start_job

from . import releases
from .compose import ComposeError, apply_plan, parse_compose
from .forms import ComposeImportForm, DeployForm, LogsForm, ScaleForm, ServiceForm
from .models import Service

ACTIONS = {"restart": "service-restart", "stop": "service-stop", "remove": "service-remove", "stats": "service-stats", "observe": "service-observe"}


@login_required
@role_required("is_operator")
@require_GET
def service_list(request):
    services = Service.objects.visible_to(request.user).select_related("cluster", "current_release")
    return render(request, "deployments/service_list.html", {"services": services})


@login_required
@role_required("is_operator")
def service_create(request):
    form = ServiceForm(request.POST or None, initial={"project": "default"})
    if request.method == "POST" and form.is_valid():
        service = form.save(commit=False)
        service.created_by = request.user
        service.save()
        messages.success(request, _("Service saved. Deploy it when ready."))
        return redirect("deployments:detail", service.pk)
    return render(request, "deployments/service_form.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@role_required("is_operator")
def service_edit(request, pk):
    service = get_visible_or_404(Service, request.user, pk=pk)
    form = ServiceForm(request.POST or None, instance=service)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Service saved. The change runs once you deploy it."))
        return redirect("deployments:detail", service.pk)
    return render(request, "deployments/service_form.html", {"form": form, "service": service}, status=400 if form.errors else 200)


@login_required
@role_required("is_operator")
@require_GET
def service_detail(request, pk):
    """The page, or for htmx polls only the live part (counts, replicas, rollout progress)."""
    service = get_visible_or_404(Service, request.user, pk=pk)
    context = _live_context(service)
    if request.htmx:
        return render(request, "deployments/service_live.html", context)
    context.update(
        jobs=Job.objects.for_target(service).select_related("user")[:15],
        deploy_form=DeployForm(),
        scale_form=ScaleForm(initial={"replicas": service.spec.get("replicas", 1)}),
        logs_form=LogsForm(),
    )
    return render(request, "deployments/service_detail.html", context)


def _live_context(service):
    observed = service.observed or {}
    active = releases.active_job(service)
    last = active or Job.objects.for_target(service).first()
    return {
        "service": service,
        "observed": observed,
        "stats": (observed.get("stats") or {}).get("rows", []),
        "releases": service.releases.select_related("created_by", "job")[:30],
        "active_job": active,
        "last_job": last,
        "polling": True,
        "poll_interval": 1 if active else 5,
    }


@login_required
@role_required("is_operator")
@require_POST
def service_deploy(request, pk):
    service = get_visible_or_404(Service, request.user, pk=pk)
    form = DeployForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Check the tag."))
        return redirect("deployments:detail", service.pk)
    try:
        release, job = releases.deploy(service, request.user, tag=form.cleaned_data["tag"] or None)
    except releases.ServiceBusy as exc:
        messages.warning(request, str(exc))
        return redirect("deployments:detail", service.pk)
    except ValidationError as exc:
        messages.error(request, _flatten(exc.detail))
        return redirect("deployments:detail", service.pk)
    messages.info(request, _("Deploying revision %(n)s (job #%(job)s).") % {"n": release.revision, "job": job.pk})
    return redirect("deployments:detail", service.pk)


@login_required
@role_required("is_operator")
@require_POST
def service_rollback(request, pk, revision):
    service = get_visible_or_404(Service, request.user, pk=pk)
    if not service.releases.filter(revision=revision).exists():
        raise Http404(_("No such revision."))
    try:
        release, job = releases.rollback(service, request.user, revision)
    except releases.ServiceBusy as exc:
        messages.warning(request, str(exc))
        return redirect("deployments:detail", service.pk)
    messages.info(request, _("Rolling back to revision %(old)s as revision %(n)s (job #%(job)s).") % {"old": revision, "n": release.revision, "job": job.pk})
    return redirect("deployments:detail", service.pk)


@login_required
@role_required("is_operator")
@require_POST
def service_scale(request, pk):
    service = get_visible_or_404(Service, request.user, pk=pk)
    form = ScaleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _flatten(form.errors))
        return redirect("deployments:detail", service.pk)
    return _start(request, service, "service-scale", form.cleaned_data)


@login_required
@role_required("is_operator")
@require_POST
def service_logs(request, pk):
    service = get_visible_or_404(Service, request.user, pk=pk)
    form = LogsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _flatten(form.errors))
        return redirect("deployments:detail", service.pk)
    job = start_job("service-logs", form.cleaned_data, request.user, target=service)
    return redirect("jobs:detail", job.pk)


@login_required
@role_required("is_operator")
@require_POST
def service_action(request, pk, action):
    service = get_visible_or_404(Service, request.user, pk=pk)
    if action not in ACTIONS:
        raise Http404(_("Unknown action."))
    return _start(request, service, ACTIONS[action], {})


def _start(request, service, kind, params):
    try:
        job = releases.act(service, request.user, kind, params)
    except releases.ServiceBusy as exc:
        messages.warning(request, str(exc))
        return redirect("deployments:detail", service.pk)
    except ValidationError as exc:
        messages.error(request, _flatten(exc.detail))
        return redirect("deployments:detail", service.pk)
    messages.info(request, _("Started %(kind)s (job #%(job)s).") % {"kind": kind, "job": job.pk})
    if kind == "service-stats":
        return redirect("jobs:detail", job.pk)
    return redirect("deployments:detail", service.pk)


@login_required
@role_required("is_operator")
def compose_import(request):
    """Upload or paste a compose file, see the preview, then save and deploy the project."""
    form = ComposeImportForm(request.POST or None, request.FILES or None)
    plan, error = None, ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            plan = parse_compose(data["text"], filename=data["filename"], project=data.get("project") or None, variables=data["variable_values"])
            plan.check_target(data["cluster"].kind)
        except ComposeError as exc:
            error = str(exc)
        if plan is not None and plan.problems and request.POST.get("confirm") == "1":
            error = _("Nothing was saved: %(cluster)s cannot run this file as written.") % {"cluster": data["cluster"]}
        elif plan is not None and request.POST.get("confirm") == "1":
            services = apply_plan(plan, data["cluster"], request.user)
            job = start_job("stack-deploy", {"project": plan.project}, request.user, target=data["cluster"])
            messages.success(request, _("Saved %(n)s service(s) in project %(project)s; deploying them (job #%(job)s).") % {"n": len(services), "project": plan.project, "job": job.pk})
            return redirect("jobs:detail", job.pk)
    if request.method == "POST" and form.is_valid():
        # Re-show the text (an uploaded file too) so that "Save and deploy" sends what was previewed.
        data = request.POST.copy()
        data["text"] = form.cleaned_data["text"]
        form = ComposeImportForm(data)
        form.is_valid()
    status = 400 if (form.errors or error or (plan is not None and plan.problems)) else 200
    return render(request, "deployments/compose_import.html", {"form": form, "plan": plan, "error": error}, status=status)


def _flatten(detail):
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(value) for value in detail)
    return str(detail)
