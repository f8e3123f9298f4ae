from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LabsConfig(AppConfig):
    """The teaching lab: courses, exercises, student environments and their checks."""

    name = "labs"
    verbose_name = _("Teaching lab")

    def ready(self):
        # Job kinds of the Docker lab live outside labs/jobs.py (which autodiscovery imports).
        from . import compose_jobs  # noqa: F401
        from . import terminals  # noqa: F401 - lab environments as terminal targets
