"""Job kinds for isolated namespaces: create, renew the token, delete.

The target is the IsolatedNamespaceRecord, which holds the quota, limits and labels; the
kubeconfig that comes back is stored encrypted on it (never in the job's lines or result).
"""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from panel.jobs.errors import JobFailed
from panel.jobs.kinds import JobKind, register

from clusters.kubernetes import isolation
from clusters.drivers import kubernetes as driver
from clusters.models import IsolatedNamespaceRecord
from clusters.kubernetes.records import IsolatedNamespaceState as State


class IsolatedNamespaceJob(JobKind):
    queue = "default"
    permission = "is_operator"
    target_model = IsolatedNamespaceRecord
    timeout = 300

    def record(self, ctx):
        record = IsolatedNamespaceRecord.objects.select_related("cluster", "cluster__credential").get(pk=ctx.job.target_id)
        if record.cluster.kind != "kubernetes":
            raise JobFailed(f"{record.cluster} is not a Kubernetes cluster.")
        return record

    def run(self, ctx):
        record = self.record(ctx)
        api_client = driver.connect(record.cluster, ctx)
        try:
            return self.work(ctx, record, api_client)
        except JobFailed as exc:
            IsolatedNamespaceRecord.objects.filter(pk=record.pk).update(state=self.failed_state(record), last_error=str(exc)[:2000], updated_at=timezone.now())
            raise
        finally:
            api_client.close()

    def failed_state(self, record):
        return State.FAILED

    def store(self, record, result):
        record.set_kubeconfig(result.kubeconfig)
        record.service_account = result.service_account
        record.token_expires_at = result.token_expires_at
        record.state = State.READY
        record.last_error = ""
        record.save()
        return {"namespace": record.name, "service_account": result.service_account, "token_expires_at": result.token_expires_at.isoformat()}


@register
class CreateIsolatedNamespace(IsolatedNamespaceJob):
    """Namespace, quota, limits, network policy, service account, role and binding (and the
    workspace pod when asked); a kubeconfig. Run again, it brings them back (a workspace pod
    that ended is replaced)."""

    name = "kube-isolated-namespace-create"
    label = _("Create an isolated namespace")

    def work(self, ctx, record, api_client):
        result = isolation.create_isolated_namespace(
            api_client, record.name, quota=record.quota or None, limits=record.limits or None, labels=record.labels or None, token_seconds=record.token_seconds,
            workspace=record.workspace, ctx=ctx,
        )
        return self.store(record, result)


@register
class RenewIsolatedNamespaceToken(IsolatedNamespaceJob):
    """A fresh short-lived token (and kubeconfig) for the namespace's service account."""

    name = "kube-isolated-namespace-renew"
    label = _("Renew an isolated namespace's token")

    def allowed(self, user, target=None):
        # The owner (a student) renews their own token; operators renew any.
        return bool(getattr(user, "is_operator", False) or (target is not None and getattr(user, "pk", None) and getattr(target, "owner_id", None) == user.pk))

    def failed_state(self, record):
        return record.state

    def work(self, ctx, record, api_client):
        if record.state in (State.DELETING, State.DELETED):
            raise JobFailed(f"Namespace {record.name} is {record.get_state_display().lower()}; create it again instead.")
        result = isolation.renew_token(api_client, record.name, token_seconds=record.token_seconds, ctx=ctx)
        return self.store(record, result)


@register
class DeleteIsolatedNamespace(IsolatedNamespaceJob):
    """Delete the namespace and everything in it (nothing to do if it is already gone)."""

    name = "kube-isolated-namespace-delete"
    label = _("Delete an isolated namespace")

    def work(self, ctx, record, api_client):
        IsolatedNamespaceRecord.objects.filter(pk=record.pk).update(state=State.DELETING)
        existed = isolation.delete_isolated_namespace(api_client, record.name, ctx=ctx)
        record.refresh_from_db()
        record.state = State.DELETED
        record.set_kubeconfig({})
        record.token_expires_at = None
        record.last_error = ""
        record.save()
        return {"namespace": record.name, "deleted": existed}
