from django.urls import path  # noqa: F401

app_name = "clusters"

urlpatterns = []

# clusters
from . import cluster_views  # noqa: E402

urlpatterns += [
    path("clusters/", cluster_views.cluster_list, name="cluster_list"),
    path("clusters/new/", cluster_views.cluster_create, name="cluster_create"),
    path("clusters/<int:pk>/", cluster_views.cluster_detail, name="cluster_detail"),
    path("clusters/<int:pk>/edit/", cluster_views.cluster_edit, name="cluster_edit"),
    path("clusters/<int:pk>/<slug:action>/", cluster_views.cluster_job, name="cluster_job"),
    path("clusters/<int:pk>/nodes/<str:node>/availability/", cluster_views.node_availability, name="node_availability"),
]
