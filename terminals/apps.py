from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TerminalsConfig(AppConfig):
    name = "terminals"
    verbose_name = _("Terminals")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import kinds  # noqa: F401 - registers the server, container and pod kinds
