from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LabsConfig(AppConfig):
    """The teaching lab: courses, exercises, student environments and their checks."""

    name = "labs"
    verbose_name = _("Teaching lab")
