from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "panel.jobs"
    label = "jobs"
    verbose_name = _("Jobs")

    def ready(self):
        # Every app declares its job kinds and periodic tasks in `<app>/jobs.py`.
        autodiscover_modules("jobs")
