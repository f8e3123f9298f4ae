from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LabsConfig(AppConfig):
    """The teaching lab: courses, exercises, student environments and their checks."""

    name = "labs"
    verbose_name = _("Teaching lab")

    def ready(self):
        from . import terminals  # noqa: F401 - lab environments as terminal targets (terminals.kinds)
        import metrics
        from clusters.signals import engine_observed, kubernetes_observed

        from .models import Environment

        metrics.register_object("environment", Environment)
        engine_observed.connect(record_environment_metrics, dispatch_uid="labs.record_environment_metrics")
        kubernetes_observed.connect(record_namespace_metrics, dispatch_uid="labs.record_namespace_metrics")


def record_environment_metrics(sender, cluster, observed, now, **kwargs):
    from .metrics import record_environment_metrics as record

    record(cluster, observed, now)


def record_namespace_metrics(sender, cluster, now, namespaces=(), **kwargs):
    from .metrics import record_namespace_metrics as record

    record(cluster, namespaces, now)
