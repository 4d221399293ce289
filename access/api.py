"""A small decorator for JSON API views: method check, auth (session + CSRF, or Bearer token), JSON errors."""
import functools
import json
import re

from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from .services import token_row


class ApiError(Exception):
    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def error_response(status, message, **extra):
    response = JsonResponse({"error": {"message": message, **extra}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="coe"'
    return response


def authenticate(request, scope="read"):
    """Set ``request.user`` from a Bearer token that has ``scope``, or check the session's CSRF token on writes;
    raises ApiError 401/403. Shared by every API, the OpenAI-compatible endpoint included. ``request.auth_token`` is
    the token's row (None with the session)."""
    request.auth_token = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Authorization header must be 'Bearer <token>'.")
        row = token_row(token.strip())
        if row is None:
            raise ApiError(401, "Invalid, expired or revoked API token.")
        if not row.allows(scope):
            raise ApiError(403, f"This token lacks the '{scope}' scope (it has: {', '.join(row.scopes)}).")
        request.user, request.auth_token = row.user, row
        return
    if not request.user.is_authenticated:
        raise ApiError(401, "Authentication required: log in or send 'Authorization: Bearer <token>'.")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
        if rejected is not None:
            raise ApiError(403, "CSRF check failed: send the X-CSRFToken header with session authentication.")


MAX_JSON_DEPTH = 32
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def _no_constant(name):
    raise ValueError(f"Request body is not valid JSON: {name} is not a number JSON allows.")


def _check_values(value, depth=0):
    """Refuse what no field can store: NUL characters and unpaired surrogates in text (PostgreSQL and UTF-8 cannot
    hold them), and nesting deeper than MAX_JSON_DEPTH (no API takes more than a few levels)."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"Request body is nested more than {MAX_JSON_DEPTH} levels deep.")
    if isinstance(value, str):
        match = _BAD_TEXT.search(value)
        if match:
            what = "a NUL character" if match.group() == "\x00" else "an unpaired surrogate (invalid Unicode)"
            raise ValueError(f"Request body contains text with {what}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_values(key, depth + 1)
            _check_values(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_values(item, depth + 1)


def parse_json_object(raw):
    """Bytes → a JSON object (dict), or ValueError with a message a client can act on (shared by every API)."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ValueError("Request body is not valid UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"Request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") \
            from None
    except RecursionError:
        raise ValueError(f"Request body is nested more than {MAX_JSON_DEPTH} levels deep.") from None
    if not isinstance(data, dict):
        raise ValueError("Request body must be a JSON object.")
    _check_values(data)
    return data


def json_body(request):
    """Parse the request body as a JSON object or raise a 400 saying what is wrong."""
    try:
        return parse_json_object(request.body)
    except ValueError as exc:
        raise ApiError(400, str(exc))


def require(allowed, message):
    """Refuse with 403 and ``message`` unless ``allowed``."""
    if not allowed:
        raise ApiError(403, message)


def api_view(methods, scope="read"):
    """Wrap a view that returns a dict (→ 200 JSON) or raises ApiError; only ``methods`` are allowed. A token must
    have ``scope`` (a name, or {method: name} for views whose methods differ)."""
    def decorate(view):
        @csrf_exempt  # CSRF is enforced above for session-authenticated writes; tokens need none
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return error_response(405, f"Method {request.method} not allowed; use {', '.join(methods)}.")
            try:
                authenticate(request, scope.get(request.method, "read") if isinstance(scope, dict) else scope)
                result = view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.message, **exc.extra)
            return result if hasattr(result, "status_code") else JsonResponse(result)
        return wrapper
    return decorate
