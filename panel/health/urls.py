from django.urls import path

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("healthz/live", views.live, name="healthz_live"),
    path("metrics", views.metrics, name="metrics"),
]
