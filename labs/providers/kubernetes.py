"""Kubernetes target: each student gets an isolated namespace and a kubeconfig for it.

The namespace, its ResourceQuota and LimitRange, its NetworkPolicy, ServiceAccount, Role
and RoleBinding, and the token in the kubeconfig are made by clusters/kube_isolation.py;
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
    """(ResourceQuota hard limits, LimitRange default) from an exercise quota {cpu, memory, pods}."""
    hard, default = {}, {}
    if quota.get("cpu"):
        hard["limits.cpu"] = hard["requests.cpu"] = str(quota["cpu"])
    if quota.get("memory"):
        hard["limits.memory"] = hard["requests.memory"] = str(quota["memory"])
    if quota.get("pods"):
        hard["pods"] = str(quota["pods"])
    if hard.get("limits.cpu") or hard.get("limits.memory"):
        # Containers that say nothing get a small share, so a quota with limits does not refuse them.
        default = {"default": {"cpu": "250m", "memory": "128Mi"}, "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}
    return hard or None, default or None


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

    def create(self):
        from clusters import kube_isolation

        environment, ctx = self.environment, self.ctx
        hard, limits = namespace_quota(environment.exercise.quota or {})
        api_client = self._admin()
        try:
            ctx.line(_("Creating the isolated namespace %(name)s.") % {"name": environment.name})
            isolated = kube_isolation.create_isolated_namespace(
                api_client, environment.name, quota=hard, limits=limits, labels=environment.labels(),
                token_seconds=token_lifetime(environment), ctx=ctx,
            )
        finally:
            api_client.close()
        kubeconfig = isolated.kubeconfig
        for user in kubeconfig.get("users") or []:
            token = (user.get("user") or {}).get("token")
            if token:
                ctx.add_secret(token)
        ctx.line(_("Namespace %(name)s ready; the kubeconfig is on the environment's page.") % {"name": isolated.name})
        return {"kubeconfig": yaml.safe_dump(kubeconfig, sort_keys=False), "namespace": isolated.name}

    def destroy(self):
        from clusters import kube_isolation

        if self.environment.cluster is None:
            return
        api_client = self._admin()
        try:
            kube_isolation.delete_isolated_namespace(api_client, self.environment.name, ctx=self.ctx)
        finally:
            api_client.close()

    def check_target(self):
        api_client = self._admin()
        return CheckTarget(
            environment=self.environment, kube=api_client, namespace=self.environment.name,
            labels=self.environment.labels(), cleanup=[api_client.close],
        )
