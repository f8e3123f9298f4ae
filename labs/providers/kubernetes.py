"""Kubernetes target: each student gets an isolated namespace and a kubeconfig for it.

The namespace, its ResourceQuota and LimitRange, its NetworkPolicy, ServiceAccount, Role
and RoleBinding, the workspace pod (a shell with kubectl as that ServiceAccount, for the
exercise page's terminal; `start: {workspace: false}` leaves it out) and the token in the
kubeconfig are made by clusters/kubernetes/isolation.py;
this provider only says which (name, quota, labels) and hands the kubeconfig over. The
checks read with the panel's own client (the cluster's credential), never the student's.
"""

import yaml
from django.utils.translation import gettext as _

from clusters.drivers import kubernetes as kube_driver
from labs.checks.base import CheckTarget

from .base import Provider

TOKEN_SECONDS_MAX = 7 * 24 * 3600


def namespace_quota(quota):
    """The ResourceQuota's hard limits: the isolation defaults, with the exercise's cpu, memory and pods."""
    from clusters.kubernetes.isolation import DEFAULT_QUOTA

    hard = dict(DEFAULT_QUOTA)
    if quota.get("cpu"):
        hard["requests.cpu"] = hard["limits.cpu"] = str(quota["cpu"])
    if quota.get("memory"):
        hard["requests.memory"] = hard["limits.memory"] = str(quota["memory"])
    if quota.get("pods"):
        hard["pods"] = str(quota["pods"])
    return hard


def wants_workspace(exercise):
    """Every Kubernetes exercise gets a workspace pod unless its file says `start: {workspace: false}`."""
    return (exercise.start or {}).get("workspace", True) is not False


def token_lifetime(environment):
    """The student's token lives as long as the environment (at least 10 minutes, at most 7 days)."""
    from django.utils import timezone

    if getattr(environment, "expires_at", None):
        seconds = int((environment.expires_at - timezone.now()).total_seconds())
    else:
        ttl = getattr(environment.exercise, "ttl", None)
        seconds = int(ttl.total_seconds()) if ttl else 3600
    return max(600, min(seconds, TOKEN_SECONDS_MAX))


class KubernetesProvider(Provider):
    target = "kubernetes"

    def _admin(self):
        return kube_driver.connect(self.environment.cluster, self.ctx)

    def _namespace_owner(self, api_client):
        """"absent", "ours" (labelled with this instance and environment) or "other" for the environment's namespace."""
        from clusters.drivers.base import NotFound
        from clusters.kubernetes.manifests import raw_request

        try:
            with kube_driver.api_errors(f"namespace {self.environment.name} on {kube_driver.describe(api_client)}"):
                data, _status = raw_request(api_client, "GET", f"/api/v1/namespaces/{self.environment.name}")
        except NotFound:
            return "absent"
        labels = ((data or {}).get("metadata") or {}).get("labels") or {}
        ours = self.environment.labels()
        same = all(labels.get(key) == ours[key] for key in ("filrouge.lab", "filrouge.env"))
        return "ours" if same else "other"

    def create(self):
        from clusters.kubernetes import isolation as kube_isolation
        from clusters.drivers.base import Conflict

        environment, ctx = self.environment, self.ctx
        api_client = self._admin()
        try:
            # Another panel (or this one under another FILROUGE_LABS_INSTANCE) may have an environment with the same name.
            if self._namespace_owner(api_client) == "other":
                raise Conflict(_("Namespace %(name)s already exists and belongs to another lab environment or panel; "
                                 "give each panel on this cluster its own FILROUGE_LABS_INSTANCE.") % {"name": environment.name})
            ctx.line(_("Creating the isolated namespace %(name)s.") % {"name": environment.name})
            isolated = kube_isolation.create_isolated_namespace(
                api_client, environment.name, quota=namespace_quota(environment.exercise.quota or {}),
                labels=environment.labels(), token_seconds=token_lifetime(environment),
                workspace=wants_workspace(environment.exercise), ctx=ctx,
            )
            self._apply_start_manifests(api_client, isolated.name)
        finally:
            api_client.close()
        kubeconfig = isolated.kubeconfig
        for user in kubeconfig.get("users") or []:
            token = (user.get("user") or {}).get("token")
            if token:
                ctx.add_secret(token)
        ctx.line(_("Namespace %(name)s ready; the kubeconfig is on the environment's page.") % {"name": isolated.name})
        return {"kubeconfig": yaml.safe_dump(kubeconfig, sort_keys=False), "namespace": isolated.name}

    def extended(self):
        """A fresh token that lives until the new expiry: the old one would end the student's access early."""
        from clusters.kubernetes import isolation as kube_isolation

        api_client = self._admin()
        try:
            renewed = kube_isolation.renew_token(api_client, self.environment.name, token_seconds=token_lifetime(self.environment), ctx=self.ctx)
        finally:
            api_client.close()
        return {"kubeconfig": yaml.safe_dump(renewed.kubeconfig, sort_keys=False), "namespace": renewed.name}

    def _apply_start_manifests(self, api_client, namespace):
        """What the exercise gives at start (start.manifests: a ConfigMap, a broken Deployment...), applied in the namespace."""
        from clusters.kubernetes.manifests import apply_objects, load_and_validate

        manifests = (self.environment.exercise.start or {}).get("manifests") or []
        if not manifests:
            return
        sources = [(f"{self.environment.exercise.slug} start.manifests", yaml.safe_dump_all(manifests, sort_keys=False))]
        objects, _discovery = load_and_validate(api_client, sources, namespace)
        apply_objects(api_client, objects, ctx=self.ctx)

    def destroy(self):
        from clusters.kubernetes import isolation as kube_isolation

        if self.environment.cluster is None:
            return
        api_client = self._admin()
        try:
            owner = self._namespace_owner(api_client)
            if owner == "other":
                self.ctx.line(_("Namespace %(name)s belongs to another environment; left alone.") % {"name": self.environment.name})
                return
            if owner == "ours":
                kube_isolation.delete_isolated_namespace(api_client, self.environment.name, ctx=self.ctx)
        finally:
            api_client.close()

    def check_target(self):
        api_client = self._admin()
        return CheckTarget(
            environment=self.environment, kube=api_client, namespace=self.environment.name,
            labels=self.environment.labels(), cleanup=[api_client.close],
        )
