"""The live dashboard (page and snapshot API) and ``/metrics`` in Prometheus text format, for a scraper that presents
the metrics token or comes from an allowed network (``COE_METRICS_TOKEN``, ``COE_METRICS_ALLOWED_NETWORKS``; by
default only this machine may scrape)."""
import hmac
import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from access.api import api_view
from routing.services import demo_state

from .metrics import CoeCollector
from .selectors import dashboard_snapshot

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


@login_required
def dashboard(request):
    return render(request, "routing/dashboard.html", {"demo": demo_state() if request.user.is_staff else None})


@api_view(["GET"])
def api_dashboard(request):
    return dashboard_snapshot(request.user)
