from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeploymentsConfig(AppConfig):
    """Services (desired state), releases, and their Docker, Swarm and Kubernetes backends."""

    name = "deployments"
    verbose_name = _("Deployments")
