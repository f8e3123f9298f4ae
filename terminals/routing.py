from django.urls import re_path

from .consumers import TerminalConsumer

websocket_urlpatterns = [
    re_path(r"^ws/terminals/(?P<kind>[a-z][a-z0-9-]{0,31})/$", TerminalConsumer.as_asgi()),
]
