"""``/metrics``: Prometheus text format, for a scraper that presents the metrics token or comes from an allowed
network (``COE_METRICS_TOKEN``, ``COE_METRICS_ALLOWED_NETWORKS``; by default only this machine may scrape)."""
import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .metrics import CoeCollector

_registry = CollectorRegistry(auto_describe=False)
_registry.register(CoeCollector())


def _allowed(request):
    token = settings.COE_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.COE_METRICS_ALLOWED_NETWORKS)


@never_cache
@require_GET
def metrics_view(request):
    if not _allowed(request):
        return JsonResponse({"error": {"message": "Metrics need the metrics token (Authorization: Bearer, "
                                                  "COE_METRICS_TOKEN) or an allowed address "
                                                  "(COE_METRICS_ALLOWED_NETWORKS)."}}, status=403)
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
