"""Job kinds for raw manifests on Kubernetes clusters, and the namespace list.

kube-manifests-validate, -diff and -apply take the id of a stored ManifestSet (the text
is encrypted there, so it is neither in the job's parameters nor in its lines). Each one
parses and validates every document against the cluster's discovery before anything is
sent; diff adds a server-side dry run per object; apply writes with server-side apply and
then follows each Deployment's rollout to the end, its progress live in the job log.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from panel.jobs.kinds import register
from panel.jobs.periodic import every

from clusters.kubernetes import manifests
from clusters.drivers import kubernetes as driver
from clusters.kubernetes.jobs import KubeClusterJob
from clusters.models import Cluster, ManifestSet

ROLLOUT_TIMEOUT = 600
# Manifest text may hold Secrets: keep it only as long as someone may look at or retry the job.
MANIFEST_SET_RETENTION = timedelta(days=7)


class ManifestSetParams(serializers.Serializer):
    manifest_set = serializers.IntegerField(help_text=_("Id of the stored manifest set (see the manifests endpoints)."))

    def validate_manifest_set(self, value):
        target = self.context.get("target")
        query = ManifestSet.objects.filter(pk=value)
        if target is not None:
            query = query.filter(cluster_id=target.pk)
        if not query.exists():
            raise serializers.ValidationError(_("No such manifest set for this cluster."))
        return value


class ApplyParams(ManifestSetParams):
    force = serializers.BooleanField(default=False, help_text=_("Take over fields owned by another field manager."))
    rollout_timeout = serializers.IntegerField(min_value=10, max_value=3600, default=ROLLOUT_TIMEOUT)


class ManifestJob(KubeClusterJob):
    Params = ManifestSetParams

    def describe(self, params):
        return f"manifest set #{params.get('manifest_set')}"


@dataclass
class Prepared:
    """A manifest set parsed and validated against the cluster, and the open client."""

    cluster: Cluster
    api_client: object
    objects: list
    discovery: manifests.Discovery
    stored: ManifestSet


def prepare(kind, ctx, manifest_set):
    """Parse, register the Secrets' values, validate against discovery. Nothing is written."""
    cluster = kind.cluster(ctx)
    stored = ManifestSet.objects.get(pk=manifest_set)
    sources = stored.get_sources()
    ctx.line(f"{len(sources)} file(s): {', '.join(stored.source_names)}; namespace {stored.namespace}", host=cluster.name, task="parse")
    problems = []
    objects = manifests.parse_documents(sources, problems)
    for value in manifests.secret_values(objects):
        ctx.add_secret(value)
    if not objects:
        raise manifests.ManifestInvalid(problems)
    ctx.line(f"{len(objects)} object(s) parsed" + (f", {len(problems)} problem(s)" if problems else ""), host=cluster.name, task="parse")
    api_client = driver.connect(cluster, ctx)
    try:
        discovery = manifests.Discovery(api_client)
        # The readable objects are checked against the cluster too: every problem of every file at once.
        objects = manifests.validate_all(objects, discovery, stored.namespace, problems)
    except Exception:
        api_client.close()
        raise
    for obj in objects:
        ctx.ok(f"{obj.label} ({obj.api_version}) valid{'' if obj.namespaced else ', cluster-scoped'}", host=obj.namespace or "(cluster)", task="validate")
    ctx.line(f"validated against the cluster's discovery with {discovery.requests} request(s)", host=cluster.name, task="validate")
    return Prepared(cluster, api_client, objects, discovery, stored)


@register
class ValidateManifests(ManifestJob):
    """Parse and validate a manifest set against what the cluster serves; send nothing."""

    name = "kube-manifests-validate"
    label = _("Validate Kubernetes manifests")
    timeout = 120

    def run(self, ctx, manifest_set):
        prepared = prepare(self, ctx, manifest_set)
        try:
            return {"namespace": prepared.stored.namespace, "objects": [obj.summary() for obj in prepared.objects], "discovery_requests": prepared.discovery.requests}
        finally:
            prepared.api_client.close()


@register
class DiffManifests(ManifestJob):
    """Server-side dry run of a manifest set and its diff against the live objects."""

    name = "kube-manifests-diff"
    label = _("Diff Kubernetes manifests")
    timeout = 300

    def run(self, ctx, manifest_set):
        prepared = prepare(self, ctx, manifest_set)
        try:
            ctx.progress(0, len(prepared.objects))
            diffs = manifests.diff_objects(prepared.api_client, prepared.objects, ctx)
        finally:
            prepared.api_client.close()
        counts = {state: sum(1 for d in diffs if d.state == state) for state in ("created", "changed", "unchanged")}
        ctx.ok(f"dry run: {counts['created']} to create, {counts['changed']} to change, {counts['unchanged']} unchanged (nothing was written)", host=prepared.cluster.name, task="diff")
        rows = [{**d.as_dict(), "diff": ctx.redact(d.diff)} for d in diffs]
        return {"namespace": prepared.stored.namespace, "objects": rows, "counts": counts, "discovery_requests": prepared.discovery.requests}


@register
class ApplyManifests(ManifestJob):
    """Apply a manifest set with server-side apply and follow the Deployments' rollouts."""

    name = "kube-manifests-apply"
    label = _("Apply Kubernetes manifests")
    timeout = 3600
    Params = ApplyParams

    def run(self, ctx, manifest_set, force=False, rollout_timeout=ROLLOUT_TIMEOUT):
        from clusters.kubernetes.rollout import follow_rollout

        prepared = prepare(self, ctx, manifest_set)
        try:
            started = time.monotonic()
            manifests.preflight(prepared.api_client, prepared.objects, force=force)
            ctx.ok(f"server-side dry run of {len(prepared.objects)} object(s) passed", host=prepared.cluster.name, task="dry-run")
            ctx.progress(0, len(prepared.objects))
            applied = manifests.apply_objects(prepared.api_client, prepared.objects, ctx, force=force)
            ctx.ok(f"{len(applied)} object(s) applied in {time.monotonic() - started:.2f} s", host=prepared.cluster.name, task="apply")
            rollouts = []
            for obj in prepared.objects:
                if obj.kind == "Deployment" and obj.api_version == "apps/v1":
                    ctx.line(f"following the rollout of {obj.label}", host=obj.namespace, task="rollout")
                    follow_rollout(prepared.api_client, obj.namespace, obj.name, ctx, timeout=rollout_timeout)
                    rollouts.append({"namespace": obj.namespace, "name": obj.name, "status": "complete"})
        finally:
            prepared.api_client.close()
        return {"namespace": prepared.stored.namespace, "applied": applied, "rollouts": rollouts, "discovery_requests": prepared.discovery.requests}


@register
class ListNamespaces(KubeClusterJob):
    """Read the cluster's namespaces (one list request)."""

    name = "kube-namespaces"
    label = _("List Kubernetes namespaces")
    timeout = 120

    def run(self, ctx):
        cluster = self.cluster(ctx)
        api_client = driver.connect(cluster, ctx)
        try:
            with driver.api_errors(f"the Kubernetes API at {driver.describe(api_client)}"):
                data, _status = manifests.raw_request(api_client, "GET", "/api/v1/namespaces")
        finally:
            api_client.close()
        rows = [
            {"name": item["metadata"]["name"], "phase": (item.get("status") or {}).get("phase", ""), "labels": item["metadata"].get("labels") or {}, "created": item["metadata"].get("creationTimestamp", "")}
            for item in (data or {}).get("items") or []
        ]
        ctx.ok(f"{len(rows)} namespace(s)", host=cluster.name, task="namespaces")
        return {"namespaces": rows}


@every(3600, queue="low", timeout=300)
def purge_old_manifest_sets(now=None):
    """Delete stored manifest sets older than MANIFEST_SET_RETENTION that no queued or
    running job still needs (their jobs keep their lines and results)."""
    from django.utils import timezone

    from panel.jobs.models import Job

    cutoff = (now or timezone.now()) - MANIFEST_SET_RETENTION
    kinds = ("kube-manifests-validate", "kube-manifests-diff", "kube-manifests-apply")
    in_use = {job.params.get("manifest_set") for job in Job.objects.active().filter(kind__in=kinds).only("params")}
    deleted, _by_model = ManifestSet.objects.filter(created_at__lt=cutoff).exclude(pk__in=[pk for pk in in_use if pk]).delete()
    return {"deleted": deleted}
