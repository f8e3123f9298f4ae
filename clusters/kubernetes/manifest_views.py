"""Pages for Kubernetes clusters: raw manifests (validate, diff, apply with the live log)
and isolated namespaces. Like every view, these read the database and start jobs."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import ValidationError

from panel.accounts.access import get_visible_or_404, role_required
from panel.accounts.models import User
from panel.jobs.models import Job, JobEvent
from panel.jobs.services import start_job

from clusters.kubernetes.manifest_api import MANIFEST_ACTIONS, MAX_MANIFEST_BYTES, IsolatedNamespaceSerializer, create_isolated, kube_cluster_or_404, known_namespaces, kubeconfig_download, start_manifest_job
from clusters.kubernetes.records import IsolatedNamespaceRecord

LOG_TAIL = 300


@login_required
@role_required("is_operator")
def manifests_page(request, pk):
    """Paste or upload manifests, pick a namespace, then Validate, Show diff or Apply."""
    cluster = kube_cluster_or_404(request.user, pk)
    names, _source, _job = known_namespaces(cluster)
    context = {"cluster": cluster, "namespaces": names, "namespace": cluster.default_namespace or "default", "text": "", "errors": []}
    if request.method == "POST":
        action = request.POST.get("action", "")
        text = request.POST.get("manifests", "")
        namespace = request.POST.get("namespace", "").strip()
        sources = [("pasted.yaml", text)] if text.strip() else []
        for upload in request.FILES.getlist("files"):
            if upload.size > MAX_MANIFEST_BYTES:
                context["errors"].append(_("%(name)s is larger than 2 MB.") % {"name": upload.name})
                continue
            try:
                sources.append((upload.name, upload.read().decode("utf-8")))
            except UnicodeDecodeError:
                context["errors"].append(_("%(name)s is not UTF-8 text.") % {"name": upload.name})
        import re

        if action not in MANIFEST_ACTIONS:
            context["errors"].append(_("Choose Validate, Show diff or Apply."))
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace):
            context["errors"].append(_("The namespace must be at most 63 lower-case letters, digits and dashes."))
        if not sources:
            context["errors"].append(_("Paste manifests or choose files."))
        context.update(text=text, namespace=namespace)
        if not context["errors"]:
            job = start_manifest_job(request.user, cluster, action, namespace, sources, force=request.POST.get("force") == "on")
            if request.htmx:
                return render(request, "clusters/partials/kube_manifest_job.html", _job_context(cluster, job))
            return redirect(f"{request.path}?job={job.pk}")
        if request.htmx:
            return render(request, "clusters/partials/kube_manifest_errors.html", context, status=400)
        return render(request, "clusters/kube_manifests.html", context, status=400)
    job_pk = request.GET.get("job")
    if job_pk and job_pk.isdigit():
        job = Job.objects.visible_to(request.user).for_target(cluster).filter(pk=job_pk, kind__in=MANIFEST_ACTIONS.values()).first()
        if job is not None:
            context.update(_job_context(cluster, job))
    return render(request, "clusters/kube_manifests.html", context)


@login_required
@role_required("is_operator")
@require_GET
def manifest_job(request, pk, job_pk):
    """htmx poll: the job's state, its live log and, once finished, its diff or applied objects."""
    cluster = kube_cluster_or_404(request.user, pk)
    job = Job.objects.visible_to(request.user).for_target(cluster).filter(pk=job_pk, kind__in=MANIFEST_ACTIONS.values()).first()
    if job is None:
        raise Http404("No such manifests job")
    return render(request, "clusters/partials/kube_manifest_job.html", _job_context(cluster, job))


def _job_context(cluster, job):
    events = list(JobEvent.objects.filter(job_id=job.pk, seq__gt=max(0, job.line_count - LOG_TAIL)).order_by("seq"))
    result = job.result or {}
    diffs = None
    if job.kind == "kube-manifests-diff" and result.get("objects") is not None:
        diffs = [{**row, "lines": [_diff_line(line) for line in row.get("diff", "").splitlines()]} for row in result["objects"]]
    return {"cluster": cluster, "job": job, "events": events, "polling": not job.is_finished, "diffs": diffs,
            "applied": result.get("applied"), "validated": result.get("objects") if job.kind == "kube-manifests-validate" else None}


@login_required
@role_required("is_operator")
def namespaces_page(request, pk):
    """The cluster's isolated namespaces, and a form to create one."""
    cluster = kube_cluster_or_404(request.user, pk)
    errors = {}
    if request.method == "POST" and request.POST.get("refresh"):
        job = start_job("kube-namespaces", {}, request.user, target=cluster)
        return redirect("jobs:detail", job.pk)
    if request.method == "POST":
        quota = {key: request.POST.get(field, "").strip() for key, field in (("pods", "quota_pods"), ("requests.cpu", "quota_cpu"), ("requests.memory", "quota_memory")) if request.POST.get(field, "").strip()}
        data = {"name": request.POST.get("name", "").strip(), "owner": request.POST.get("owner", "").strip() or None, "quota": quota, "token_seconds": request.POST.get("token_seconds") or 3600,
                "workspace": request.POST.get("workspace") == "1"}
        serializer = IsolatedNamespaceSerializer(data=data)
        if serializer.is_valid():
            response = create_isolated(request.user, cluster, serializer.validated_data)
            if response.status_code == 202:
                messages.success(request, _("Isolated namespace %(name)s is being created (job #%(job)s).") % {"name": data["name"], "job": response.data["job"]["id"]})
                return redirect("clusters:kube_namespaces", cluster.pk)
            errors = response.data
        else:
            errors = serializer.errors
    records = IsolatedNamespaceRecord.objects.filter(cluster=cluster).exclude(state="deleted").select_related("owner")
    names, source, _job = known_namespaces(cluster)
    context = {"cluster": cluster, "records": records, "errors": errors, "cluster_namespaces": names, "namespaces_source": source, "users": User.objects.filter(is_active=True).order_by("username"), "post": request.POST}
    return render(request, "clusters/kube_namespaces.html", context, status=400 if errors else 200)


@login_required
@require_POST
def isolated_namespace_action(request, pk, action):
    record = get_visible_or_404(IsolatedNamespaceRecord, request.user, pk=pk)
    # "update" runs the create job again: it brings every object back (a workspace pod that ended too).
    kinds = {"renew": "kube-isolated-namespace-renew", "delete": "kube-isolated-namespace-delete", "update": "kube-isolated-namespace-create"}
    if action not in kinds:
        raise Http404("No such action")
    try:
        job = start_job(kinds[action], {}, request.user, target=record)
    except (PermissionDenied, ValidationError) as exc:
        raise PermissionDenied(str(exc)) from None
    return redirect("jobs:detail", job.pk)


@login_required
@require_GET
def isolated_namespace_kubeconfig(request, pk):
    """The audited kubeconfig download (owner or admin)."""
    record = get_visible_or_404(IsolatedNamespaceRecord, request.user, pk=pk)
    if not record.can_download(request.user):
        raise PermissionDenied(_("Only the namespace's owner or an admin may download its kubeconfig."))
    response = kubeconfig_download(request, record)
    if response.status_code != 200:
        messages.error(request, _("No valid token: renew it first."))
        return redirect("clusters:kube_namespaces", record.cluster_id)
    return response


def _diff_line(line):
    if line.startswith(("+++", "---")):
        return ("head", line)
    if line.startswith("+"):
        return ("add", line)
    if line.startswith("-"):
        return ("del", line)
    if line.startswith("@@"):
        return ("hunk", line)
    return ("", line)
