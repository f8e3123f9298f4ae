from django.urls import path

from . import views

app_name = "deployments"

urlpatterns = [
    path("", views.service_list, name="list"),
    path("new/", views.service_create, name="create"),
    path("import/", views.compose_import, name="compose_import"),
    path("<int:pk>/", views.service_detail, name="detail"),
    path("<int:pk>/edit/", views.service_edit, name="edit"),
    path("<int:pk>/deploy/", views.service_deploy, name="deploy"),
    path("<int:pk>/scale/", views.service_scale, name="scale"),
    path("<int:pk>/logs/", views.service_logs, name="logs"),
    path("<int:pk>/rollback/<int:revision>/", views.service_rollback, name="rollback"),
    path("<int:pk>/<slug:action>/", views.service_action, name="action"),
]
