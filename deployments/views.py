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
from .builds import ArchiveError, extract_archive, find_compose_file, project_root
from .compose import ComposeError, apply_plan, check_target, parse_compose, read_env_file
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
    """Upload or paste a compose file (or upload the project folder as an archive, with its
    build contexts), see the preview, then save and deploy the project."""
    form = ComposeImportForm(request.POST or None, request.FILES or None)
    plan, error = None, ""
    token = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data.get("project_archive") or data.get("upload_token"):
                token, archive, name = _kept_upload(request, data)
                plan = _plan_from_archive(archive, name, data)
            else:
                plan = parse_compose(data["text"], filename=data["filename"], project=data.get("project") or None, variables=data["variable_values"],
                                     registry=data.get("registry") or None)
        except (ComposeError, ArchiveError) as exc:
            error = str(exc)
        if plan is not None:
            check_target(plan, data["cluster"])
        if plan is not None and plan.problems and request.POST.get("confirm") == "1":
            error = _("Nothing was saved: %(cluster)s cannot run this file as written.") % {"cluster": data["cluster"]}
        elif plan is not None and request.POST.get("confirm") == "1":
            services = apply_plan(plan, data["cluster"], request.user, registry_credential=data.get("registry_credential"))
            _drop_upload(request, token)
            job = start_job("stack-deploy", {"project": plan.project}, request.user, target=data["cluster"])
            messages.success(request, _("Saved %(n)s service(s) in project %(project)s; deploying them (job #%(job)s).") % {"n": len(services), "project": plan.project, "job": job.pk})
            return redirect("jobs:detail", job.pk)
    if request.method == "POST" and form.is_valid():
        # Re-show the text (an uploaded file too) so that "Save and deploy" sends what was
        # previewed; an uploaded archive is kept on the server under a token of this session.
        data = request.POST.copy()
        data["text"] = form.cleaned_data["text"]
        data["upload_token"] = token
        form = ComposeImportForm(data)
        form.is_valid()
    status = 400 if (form.errors or error or (plan is not None and plan.problems)) else 200
    return render(request, "deployments/compose_import.html", {"form": form, "plan": plan, "error": error, "archive_kept": bool(token)}, status=status)


UPLOADS_SESSION_KEY = "compose_uploads"
UPLOAD_MAX_AGE = 24 * 3600


def _uploads_dir():
    import os
    import tempfile

    from django.conf import settings

    folder = os.path.join(getattr(settings, "FILROUGE_SCRATCH_DIR", None) or tempfile.gettempdir(), "filrouge-compose-uploads")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def _kept_upload(request, data):
    """(token, archive bytes, file name): a new upload is kept for the confirm step; a token
    is honoured only for the session that made it."""
    import os
    import secrets
    import time

    folder = _uploads_dir()
    for entry in os.listdir(folder):  # forget what nobody confirmed within a day
        path = os.path.join(folder, entry)
        if time.time() - os.path.getmtime(path) > UPLOAD_MAX_AGE:
            os.remove(path)
    kept = dict(request.session.get(UPLOADS_SESSION_KEY) or {})
    upload = data.get("project_archive")
    if upload:
        archive = upload.read()
        token = secrets.token_hex(16)
        with open(os.open(os.path.join(folder, token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(archive)
        kept[token] = upload.name
        request.session[UPLOADS_SESSION_KEY] = kept
        return token, archive, upload.name
    token = data["upload_token"]
    path = os.path.join(folder, token)
    if token not in kept or not token.isalnum() or not os.path.exists(path):
        raise ArchiveError(_("The uploaded archive is no longer kept; upload it again."))
    with open(path, "rb") as handle:
        return token, handle.read(), kept[token]


def _drop_upload(request, token):
    import os

    if not token:
        return
    kept = dict(request.session.get(UPLOADS_SESSION_KEY) or {})
    kept.pop(token, None)
    request.session[UPLOADS_SESSION_KEY] = kept
    try:
        os.remove(os.path.join(_uploads_dir(), token))
    except OSError:
        pass


def _plan_from_archive(archive, name, data):
    """Unpack the project into a throw-away folder and read it there (paths confined to it)."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="filrouge-compose-") as folder:
        extract_archive(archive, folder, name)
        root = project_root(folder)
        compose = find_compose_file(root)
        if compose is None:
            raise ArchiveError(_("The archive holds no compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml (at its root or in its single top folder)."))
        variables = {}
        dotenv = os.path.join(root, ".env")
        if os.path.isfile(dotenv):
            variables.update(read_env_file(dotenv))
        variables.update(data["variable_values"])  # what the person typed wins, like the shell over .env
        with open(compose, encoding="utf-8") as handle:
            try:
                text = handle.read()
            except UnicodeDecodeError:
                raise ArchiveError(_("%(name)s is not UTF-8 text.") % {"name": os.path.basename(compose)}) from None
        return parse_compose(text, filename=os.path.relpath(compose, folder), project=data.get("project") or None, variables=variables,
                             base_dir=root, registry=data.get("registry") or None, confine=True)


def _flatten(detail):
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(value) for value in detail)
    return str(detail)
