"""Errors that never reach a caller as Django's HTML stack page.

- API paths (``/api/``, ``/v1/``) always answer JSON — ``{"error": {"message", …}}``, OpenAI's shape on ``/v1`` —
  for a 404, a 405, a 500, and for bad input that slips past a view.
- An outage of the database, Redis or the broker answers 503 with ``Retry-After``: JSON on API paths, a page with a
  banner elsewhere. The work is not lost: what was committed stays pending and the reconciler finishes it.
- Text with NUL characters (PostgreSQL cannot store them) in a query string or form is refused with 400 before any
  view runs; JSON bodies are checked by ``access.api.parse_json_object``.
"""
import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from csp.middleware import CSPMiddleware
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import JsonResponse
from django.shortcuts import render

log = logging.getLogger(__name__)
API_PREFIXES = ("/api/", "/v1/")
RETRY_AFTER_S = 5


def _outage_errors():
    errors = [OperationalError, InterfaceError]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeout

        errors += [RedisConnectionError, RedisTimeout]
    except ImportError:  # pragma: no cover - redis is a requirement
        pass
    try:
        from kombu.exceptions import OperationalError as BrokerError

        errors.append(BrokerError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


OUTAGE = _outage_errors()


def is_api(request):
    return request.path.startswith(API_PREFIXES)


def json_error(request, status, message, **extra):
    body = {"message": message, **extra}
    if request.path.startswith("/v1/"):
        body = {"message": message, "type": extra.get("type", "api_error"), "param": None,
                "code": extra.get("code")}
    response = JsonResponse({"error": body}, status=status)
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def outage_response(request, exc):
    """503 for an outage. The page is standalone: no session or user lookup, which would need the database."""
    log.error("service outage while serving %s: %s: %s", request.path, type(exc).__name__, exc)
    message = "A backing service (database, Redis or the broker) is unreachable; retry shortly."
    if is_api(request):
        return json_error(request, 503, message, code="service_unavailable")
    response = render(None, "outage.html", {"message": message}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _nul_refusal(request):
    """A 400 response when a query or form value (or name) holds a NUL character, else None."""
    for values in (request.GET, request.POST if request.method == "POST" else None):
        for key, value in values.lists() if values is not None else ():
            if "\x00" in key or any("\x00" in v for v in value):
                message = f"The field {key.replace(chr(0), '')!r} contains a NUL character."
                if is_api(request):
                    return json_error(request, 400, message)
                return render(None, "outage.html", {"message": message, "title": "Bad request"}, status=400)
    return None


class ErrorsMiddleware:
    """Refuse NUL characters in query strings and forms; turn outages into 503s and API crashes into JSON 500s.
    Async-capable (no thread hop on the event loop's requests: see static_middleware)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return _nul_refusal(request) or self.get_response(request)

    async def _acall(self, request):
        return _nul_refusal(request) or await self.get_response(request)

    def process_exception(self, request, exc):
        if isinstance(exc, OUTAGE) or (isinstance(exc, DatabaseError) and "connection" in str(exc).lower()):
            return outage_response(request, exc)
        if is_api(request):
            log.exception("unhandled error in %s", request.path)
            return json_error(request, 500, "Internal error; it has been logged.")
        return None


def not_found(request, exception=None):
    if is_api(request):
        return json_error(request, 404, f"No API endpoint at {request.path}.")
    return render(request, "outage.html", {"title": "Not found", "message": "There is no page here."}, status=404)


def server_error(request):
    if is_api(request):
        return json_error(request, 500, "Internal error; it has been logged.")
    return render(request, "outage.html", {"title": "Server error",
                                           "message": "Something went wrong; it has been logged."}, status=500)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware without its thread hops under ASGI: setting the header is pure computation."""

    async def __acall__(self, request):
        self.process_request(request)
        return self.process_response(request, await self.get_response(request))
