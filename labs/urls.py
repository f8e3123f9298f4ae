from django.urls import path  # noqa: F401

app_name = "labs"

urlpatterns = []

# Docker lab: submit a compose file to one's environment (labs/compose_views.py).
from .compose_urls import urlpatterns as compose_urlpatterns  # noqa: E402

urlpatterns += compose_urlpatterns
