"""Every REST endpoint, written out. Apps add their lines here (see docs/api-guide.md)."""

from django.urls import path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from panel.accounts import api as accounts_api
from panel.audit import api as audit_api
from panel.jobs import api as jobs_api

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="api-docs", permanent=False), name="api-root"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("me/", accounts_api.Me.as_view(), name="api-me"),
    path("tokens/", accounts_api.TokenListCreate.as_view(), name="api-tokens"),
    path("tokens/<int:pk>/", accounts_api.TokenRevoke.as_view(), name="api-token"),
    path("audit/", audit_api.AuditEventList.as_view(), name="api-audit"),
    path("jobs/", jobs_api.JobListCreate.as_view(), name="api-jobs"),
    path("jobs/<int:pk>/", jobs_api.JobDetail.as_view(), name="api-job"),
    path("jobs/<int:pk>/events/", jobs_api.JobEvents.as_view(), name="api-job-events"),
    path("jobs/<int:pk>/cancel/", jobs_api.JobCancel.as_view(), name="api-job-cancel"),
    path("jobs/<int:pk>/retry/", jobs_api.JobRetry.as_view(), name="api-job-retry"),
    path("job-kinds/", jobs_api.JobKinds.as_view(), name="api-job-kinds"),
]
