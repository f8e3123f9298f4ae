"""A URLconf for tests/test_errors.py: the panel's URLs plus views that break."""

from django.urls import path

from panel.urls import handler400, handler403, handler404, handler500, urlpatterns as panel_urlpatterns  # noqa: F401


def boom(request):
    raise RuntimeError("secret detail that must not leak")


urlpatterns = [path("boom/", boom), path("api/boom/", boom), *panel_urlpatterns]
