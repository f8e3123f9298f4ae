from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "panel.audit"
    label = "audit"
    verbose_name = _("Audit log")

    def ready(self):
        from . import recorder  # noqa: F401  (connects the model and login signals)
