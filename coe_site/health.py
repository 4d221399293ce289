"""Liveness and readiness for load balancers and orchestrators: no authentication, and no data beyond up/down.

``/healthz``: the process answers (touches nothing else). ``/readyz``: the database, Redis and the broker configured
for this process answer; 503 with ``Retry-After`` otherwise. Neither says where a service lives or why it failed
(that is in the log): the endpoints are public.
"""
import logging

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .preflight import check_services

log = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "alive"})


@never_cache
@require_GET
def readyz(request):
    results = check_services(timeout=1)
    for name, failure in results.items():
        if failure is not None:
            log.warning("readiness: %s is unreachable: %s", failure[0], failure[1])
    checks = {name: "ok" if failure is None else "unreachable" for name, failure in results.items()}
    ready = all(v == "ok" for v in checks.values())
    response = JsonResponse({"status": "ready" if ready else "unready", "checks": checks}, status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = "5"
    return response
