"""Pages for Kubernetes clusters: add one (kubeconfig or token), its observed state, and
the buttons that start its jobs. Views read the database and start jobs; the contexts
of a pasted kubeconfig are read from the text itself, never from the cluster."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from panel.accounts.access import role_required
from panel.jobs.models import Job
from panel.jobs.services import start_job

from clusters.kubernetes.cluster_input import kubeconfig_contexts, parse_kubeconfig_text
from clusters.kubernetes.forms import KubeClusterEditForm, KubeClusterForm

JOB_KINDS = {"test": "kube-connect-test", "probe": "kube-observe"}
PODS_SHOWN = 100


@login_required
@role_required("is_operator")
def kube_cluster_create(request):
    form = KubeClusterForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        cluster = form.save(request.user)
        if cluster is not None:
            job = start_job("kube-connect-test", {}, request.user, target=cluster)
            messages.success(request, _("Cluster saved; a connect test is running (job #%(id)s).") % {"id": job.pk})
            return redirect("clusters:cluster_detail", cluster.pk)
    return render(request, "clusters/kube_cluster_form.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@role_required("is_operator")
@require_POST
def kube_contexts(request):
    """htmx: the contexts of the kubeconfig being pasted or uploaded (parsed here, nothing sent anywhere)."""
    upload = request.FILES.get("kubeconfig_file")
    text = upload.read(1_000_000).decode("utf-8", errors="replace") if upload else request.POST.get("kubeconfig", "")
    context = {"contexts": [], "current": "", "error": ""}
    if text.strip():
        try:
            rows, current = kubeconfig_contexts(parse_kubeconfig_text(text))
            context.update(contexts=rows, current=current)
        except ValidationError as exc:
            context["error"] = " ".join(exc.messages)
    return render(request, "clusters/partials/kube_contexts.html", context)


def kube_state_context(cluster):
    observed = cluster.observed or {}
    return {
        "cluster": cluster,
        "observed": observed,
        "namespaces": sorted(observed.get("namespaces") or [], key=lambda row: (-row.get("pods", 0), row.get("name", "")))[:100],
        "warnings": list(reversed(observed.get("warnings") or [])),
        "running_pods": (observed.get("pods") or [])[:PODS_SHOWN],
        "running_pods_more": len(observed.get("pods") or []) > PODS_SHOWN or observed.get("pods_truncated", False),
    }


def kube_cluster_detail(request, cluster):
    """Called by cluster_views.cluster_detail for clusters of kind kubernetes."""
    context = kube_state_context(cluster)
    if request.htmx:
        return render(request, "clusters/kube_cluster_state.html", context)
    context["jobs"] = Job.objects.for_target(cluster).select_related("user")[:10]
    context["services"] = cluster.services.all()
    return render(request, "clusters/kube_cluster_detail.html", context)


def kube_cluster_edit(request, cluster):
    """Called by cluster_views.cluster_edit for clusters of kind kubernetes."""
    form = KubeClusterEditForm(request.POST or None, instance=cluster)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Cluster saved."))
        return redirect("clusters:cluster_detail", cluster.pk)
    return render(request, "clusters/cluster_form.html", {"form": form, "cluster": cluster}, status=400 if form.errors else 200)
