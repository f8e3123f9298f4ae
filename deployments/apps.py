from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeploymentsConfig(AppConfig):
    """Services (desired state), releases, and their Docker, Swarm and Kubernetes backends."""

    name = "deployments"
    verbose_name = _("Deployments")

    def ready(self):
        # Cluster probes announce what they saw (clusters/signals.py); services on that
        # cluster take their observed state from it, without another call to the cluster.
        import metrics
        from clusters.signals import engine_observed, kubernetes_observed

        from .models import Service

        metrics.register_object("service", Service)

        engine_observed.connect(store_engine_services, dispatch_uid="deployments.store_engine_services")
        kubernetes_observed.connect(store_kubernetes_services, dispatch_uid="deployments.store_kubernetes_services")


def store_engine_services(sender, cluster, observed, now, **kwargs):
    from .probe import store_service_observations

    store_service_observations(cluster, observed, now)


def store_kubernetes_services(sender, cluster, service_pods, now, autoscalers=(), ctx=None, **kwargs):
    from .backends.kubernetes.probe import store_kube_service_observations

    store_kube_service_observations(cluster, service_pods, now, autoscalers, ctx=ctx)
