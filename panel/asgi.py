"""ASGI entry point: HTTP goes to Django, websockets to the terminal consumers.

Served by gunicorn with uvicorn workers (`make run`, compose.yaml). The websocket side
checks the session (AuthMiddlewareStack), the Origin (ALLOWED_HOSTS) and then the object
in the consumer; see terminals/consumers.py.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "panel.settings")
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - after Django is set up
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from terminals.routing import websocket_urlpatterns  # noqa: E402
from terminals.security import allowed_hosts_origin_validator  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_application,
    "websocket": AuthMiddlewareStack(allowed_hosts_origin_validator(URLRouter(websocket_urlpatterns))),
})
