from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClustersConfig(AppConfig):
    """Inventory: credentials, servers, groups, clusters, and the drivers that reach them."""

    name = "clusters"
    verbose_name = _("Inventory")

    def ready(self):
        import metrics

        from .models import Cluster, Server

        metrics.register_object("server", Server)
        metrics.register_object("cluster", Cluster)
