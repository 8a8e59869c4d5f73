"""ASGI entry point: HTTP through Django, websockets through the streaming stack (SPEC)."""

import os

from django.core.asgi import get_asgi_application

# Production unless told otherwise (as manage.py): `make run` and the tests name their settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from streaming.middleware import websocket_stack  # noqa: E402
from streaming.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),
    }
)
