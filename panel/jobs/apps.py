from importlib import import_module
from pathlib import Path

from django.apps import AppConfig, apps
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "panel.jobs"
    label = "jobs"
    verbose_name = _("Jobs")

    def ready(self):
        # Every app declares its job kinds and periodic tasks in `<app>/jobs.py`, and each
        # room of an app (a sub-package such as clusters/kubernetes/) in `<app>/<room>/jobs.py`.
        autodiscover_modules("jobs")
        for app_config in apps.get_app_configs():
            for room in sorted(Path(app_config.path).iterdir()):
                if (room / "__init__.py").is_file() and (room / "jobs.py").is_file():
                    import_module(f"{app_config.name}.{room.name}.jobs")
