"""ASGI entry point: HTTP through Django, websockets through Channels (patterns in ``coe_site/ws_urls.py``).

Bearer-token calls to ``/v1/`` take a shorter middleware chain, all on the event loop (``coe_site/token_api.py``)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coe_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from access.ws import BearerTokenMiddleware  # noqa: E402
from coe_site import jobs, warmup  # noqa: E402
from coe_site.fanout import KeepServerSend  # noqa: E402
from coe_site.preflight import require_services  # noqa: E402
from coe_site.token_api import application as http_application  # noqa: E402
from coe_site.ws_urls import websocket_urlpatterns  # noqa: E402

require_services()
warmup.start()
jobs.start_embedded_reconciler()

application = ProtocolTypeRouter(
    {
        "http": http_application(django_asgi_app),
        "websocket": KeepServerSend(AllowedHostsOriginValidator(
            AuthMiddlewareStack(BearerTokenMiddleware(URLRouter(websocket_urlpatterns))))),
    }
)
