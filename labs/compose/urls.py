"""Page of the Docker lab's compose submission; included by labs/urls.py."""

from django.urls import path

from labs.compose import views as compose_views

urlpatterns = [
    path("environments/<int:pk>/compose/", compose_views.environment_compose, name="environment-compose"),
]
