"""Every REST endpoint, written out. Apps add their lines here (see docs/api-guide.md)."""

from django.urls import path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from clusters.docker import api as cluster_api
from clusters.inventory import api as clusters_api
from clusters.kubernetes import api as clusters_kube_api
from clusters.kubernetes import manifest_api as kube_manifest_api
from deployments import api as deployments_api
from deployments import service_state_api
from labs import api as labs_api
from labs.compose import api as labs_compose_api
from metrics import api as metrics_api
from panel.accounts import api as accounts_api
from panel.audit import api as audit_api
from panel.jobs import api as jobs_api

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="api-docs", permanent=False), name="api-root"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
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
    # metrics (time series of what the probes observe)
    path("metrics/", metrics_api.MetricsQuery.as_view(), name="api-metrics"),
    path("metrics/names/", metrics_api.MetricNames.as_view(), name="api-metric-names"),
    # clusters (Docker hosts and Swarms)
    path("clusters/", cluster_api.ClusterListCreate.as_view(), name="api-clusters"),
    path("clusters/<int:pk>/", cluster_api.ClusterDetail.as_view(), name="api-cluster"),
    path("clusters/<int:pk>/nodes/<str:node>/availability/", cluster_api.NodeAvailability.as_view(), name="api-cluster-node-availability"),
    # Kubernetes namespaces, manifests and isolated namespaces (before the generic cluster-job route)
    path("clusters/<int:pk>/namespaces/", kube_manifest_api.ClusterNamespaces.as_view(), name="api-cluster-namespaces"),
    path("clusters/<int:pk>/manifests/<slug:action>/", kube_manifest_api.ClusterManifests.as_view(), name="api-cluster-manifests"),
    path("clusters/<int:pk>/isolated-namespaces/", kube_manifest_api.IsolatedNamespaceListCreate.as_view(), name="api-cluster-isolated-namespaces"),
    path("isolated-namespaces/<int:pk>/", kube_manifest_api.IsolatedNamespaceDetail.as_view(), name="api-isolated-namespace"),
    path("isolated-namespaces/<int:pk>/renew/", kube_manifest_api.IsolatedNamespaceRenew.as_view(), name="api-isolated-namespace-renew"),
    path("isolated-namespaces/<int:pk>/kubeconfig/", kube_manifest_api.IsolatedNamespaceKubeconfig.as_view(), name="api-isolated-namespace-kubeconfig"),
    path("clusters/<int:pk>/<slug:action>/", cluster_api.ClusterJob.as_view(), name="api-cluster-job"),
    # services and releases
    path("services/", deployments_api.ServiceListCreate.as_view(), name="api-services"),
    path("services/<int:pk>/", deployments_api.ServiceDetail.as_view(), name="api-service"),
    path("services/<int:pk>/releases/", deployments_api.ReleaseList.as_view(), name="api-service-releases"),
    path("services/<int:pk>/deploy/", deployments_api.ServiceDeploy.as_view(), name="api-service-deploy"),
    path("services/<int:pk>/scale/", deployments_api.ServiceScale.as_view(), name="api-service-scale"),
    path("services/<int:pk>/rollback/", deployments_api.ServiceRollback.as_view(), name="api-service-rollback"),
    path("services/<int:pk>/restart/", deployments_api.ServiceRestart.as_view(), name="api-service-restart"),
    path("services/<int:pk>/stop/", deployments_api.ServiceStop.as_view(), name="api-service-stop"),
    path("services/<int:pk>/remove/", deployments_api.ServiceRemove.as_view(), name="api-service-remove"),
    # Inventory (clusters app)
    path("credentials/", clusters_api.CredentialList.as_view(), name="api-credentials"),
    path("credentials/<int:pk>/", clusters_api.CredentialDetail.as_view(), name="api-credential"),
    path("servers/", clusters_api.ServerList.as_view(), name="api-servers"),
    path("servers/<int:pk>/", clusters_api.ServerDetail.as_view(), name="api-server"),
    path("servers/<int:pk>/accept-host-key/", clusters_api.ServerAcceptHostKey.as_view(), name="api-server-accept-host-key"),
    path("servers/<int:pk>/scan-host-keys/", clusters_api.ServerScanHostKeys.as_view(), name="api-server-scan-host-keys"),
    path("servers/<int:pk>/pin-host-key/", clusters_api.ServerPinHostKey.as_view(), name="api-server-pin-host-key"),
    path("servers/known-hosts/", clusters_api.KnownHostsImport.as_view(), name="api-servers-known-hosts"),
    path("groups/", clusters_api.GroupList.as_view(), name="api-groups"),
    path("groups/<int:pk>/", clusters_api.GroupDetail.as_view(), name="api-group"),
    path("inventory/import/", clusters_api.InventoryImport.as_view(), name="api-inventory-import"),
    path("inventory/export/", clusters_api.InventoryExport.as_view(), name="api-inventory-export"),
    path("inventory/ansible/", clusters_api.AnsibleDynamicInventory.as_view(), name="api-inventory-ansible"),
    path("recipes/", clusters_api.RecipeList.as_view(), name="api-recipes"),
    path("recipe-runs/", clusters_api.RecipeRunStart.as_view(), name="api-recipe-runs"),
    # Kubernetes clusters, and what runs of a service (pods, events, logs)
    path("clusters/kubernetes/", clusters_kube_api.KubeClusterCreate.as_view(), name="api-clusters-kubernetes"),
    path("services/<int:pk>/pods/", service_state_api.ServicePods.as_view(), name="api-service-pods"),
    path("services/<int:pk>/events/", service_state_api.ServiceEvents.as_view(), name="api-service-events"),
    path("services/<int:pk>/logs/", service_state_api.ServiceLogs.as_view(), name="api-service-logs"),
    path("services/<int:pk>/observe/", service_state_api.ServiceObserve.as_view(), name="api-service-observe"),
    # teaching lab
    path("labs/courses/", labs_api.CourseList.as_view(), name="api-labs-courses"),
    path("labs/courses/<int:pk>/", labs_api.CourseDetail.as_view(), name="api-labs-course"),
    path("labs/courses/<int:pk>/grid/", labs_api.CourseGrid.as_view(), name="api-labs-course-grid"),
    path("labs/enrol/", labs_api.Enrol.as_view(), name="api-labs-enrol"),
    path("labs/exercises/", labs_api.ExerciseList.as_view(), name="api-labs-exercises"),
    path("labs/exercises/<int:pk>/", labs_api.ExerciseDetail.as_view(), name="api-labs-exercise"),
    path("labs/exercises/<int:pk>/launch/", labs_api.ExerciseLaunch.as_view(), name="api-labs-exercise-launch"),
    path("labs/exercises/<int:pk>/class-start/", labs_api.ClassStart.as_view(), name="api-labs-class-start"),
    path("labs/environments/", labs_api.EnvironmentList.as_view(), name="api-labs-environments"),
    path("labs/environments/<int:pk>/", labs_api.EnvironmentDetail.as_view(), name="api-labs-environment"),
    # teaching lab on Docker: a student's compose file for their environment (before the actions, which would take "compose")
    path("labs/environments/<int:pk>/compose/", labs_compose_api.EnvironmentCompose.as_view(), name="api-lab-environment-compose"),
    re_path(r"^labs/environments/(?P<pk>[0-9]+)/(?P<action>check|reset|destroy|extend|expire)/$", labs_api.EnvironmentAction.as_view(), name="api-labs-environment-action"),
    path("labs/attempts/", labs_api.AttemptList.as_view(), name="api-labs-attempts"),
    path("labs/attempts/<int:pk>/", labs_api.AttemptDetail.as_view(), name="api-labs-attempt"),
]
