from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

# The admin says Filrouge, not "Django administration".
admin.site.site_header = format_lazy(_("{site} administration"), site=settings.SITE_NAME)
admin.site.site_title = settings.SITE_NAME
admin.site.index_title = _("Administration")

urlpatterns = [
    path("", include("panel.dashboard.urls")),
    path("", include("panel.health.urls")),
    path("accounts/", include("panel.accounts.urls")),
    path("jobs/", include("panel.jobs.urls")),
    path("audit/", include("panel.audit.urls")),
    path("inventory/", include("clusters.urls")),
    path("services/", include("deployments.urls")),
    path("labs/", include("labs.urls")),
    path("terminals/", include("terminals.urls")),
    path("api/", include("panel.api_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

handler400 = "panel.lib.errors.bad_request"
handler403 = "panel.lib.errors.permission_denied"
handler404 = "panel.lib.errors.not_found"
handler500 = "panel.lib.errors.server_error"
