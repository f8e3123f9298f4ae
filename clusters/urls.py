from django.urls import path

# Each room of the app has its own views: inventory (servers, groups, credentials, Ansible
# files, recipe runs), docker (engines and Swarms), kubernetes (clusters, manifests, namespaces).
from .docker import views as cluster_views
from .inventory import views
from .kubernetes import manifest_views as kube_manifest_views
from .kubernetes import views as kube_views

app_name = "clusters"

urlpatterns = [
    # servers, groups, credentials, Ansible import/export, recipe runs
    path("", views.server_list, name="server_list"),
    path("servers/new/", views.server_edit, name="server_create"),
    path("servers/facts/", views.servers_gather_facts, name="servers_facts"),
    path("servers/<int:pk>/", views.server_detail, name="server_detail"),
    path("servers/<int:pk>/edit/", views.server_edit, name="server_edit"),
    path("servers/<int:pk>/delete/", views.server_delete, name="server_delete"),
    path("servers/<int:pk>/accept-host-key/", views.server_accept_host_key, name="server_accept_host_key"),
    path("servers/<int:pk>/scan-host-keys/", views.server_scan_host_keys, name="server_scan_host_keys"),
    path("servers/<int:pk>/pin-host-key/", views.server_pin_scanned_key, name="server_pin_scanned_key"),
    path("servers/known-hosts/", views.known_hosts_import, name="known_hosts_import"),
    path("groups/", views.group_list, name="group_list"),
    path("groups/new/", views.group_edit, name="group_create"),
    path("groups/<int:pk>/", views.group_detail, name="group_detail"),
    path("groups/<int:pk>/edit/", views.group_edit, name="group_edit"),
    path("groups/<int:pk>/delete/", views.group_delete, name="group_delete"),
    path("credentials/", views.credential_list, name="credential_list"),
    path("credentials/new/", views.credential_edit, name="credential_create"),
    path("credentials/<int:pk>/edit/", views.credential_edit, name="credential_edit"),
    path("credentials/<int:pk>/delete/", views.credential_delete, name="credential_delete"),
    path("import/", views.inventory_import, name="import"),
    path("export/", views.inventory_export, name="export"),
    path("run/", views.recipe_run, name="recipe_run"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    # clusters (Docker hosts and Swarms)
    path("clusters/", cluster_views.cluster_list, name="cluster_list"),
    path("clusters/new/", cluster_views.cluster_create, name="cluster_create"),
    path("clusters/kubernetes/new/", kube_views.kube_cluster_create, name="kube_cluster_create"),
    path("clusters/kubernetes/contexts/", kube_views.kube_contexts, name="kube_contexts"),
    path("clusters/<int:pk>/", cluster_views.cluster_detail, name="cluster_detail"),
    path("clusters/<int:pk>/edit/", cluster_views.cluster_edit, name="cluster_edit"),
    # Kubernetes manifests and isolated namespaces (before the generic cluster-job route)
    path("clusters/<int:pk>/manifests/", kube_manifest_views.manifests_page, name="kube_manifests"),
    path("clusters/<int:pk>/manifests/jobs/<int:job_pk>/", kube_manifest_views.manifest_job, name="kube_manifest_job"),
    path("clusters/<int:pk>/namespaces/", kube_manifest_views.namespaces_page, name="kube_namespaces"),
    path("isolated-namespaces/<int:pk>/kubeconfig/", kube_manifest_views.isolated_namespace_kubeconfig, name="isolated_namespace_kubeconfig"),
    path("isolated-namespaces/<int:pk>/<slug:action>/", kube_manifest_views.isolated_namespace_action, name="isolated_namespace_action"),
    path("clusters/<int:pk>/<slug:action>/", cluster_views.cluster_job, name="cluster_job"),
    path("clusters/<int:pk>/nodes/<str:node>/availability/", cluster_views.node_availability, name="node_availability"),
]
