"""Bearer-token calls to ``/v1/`` go through a shorter middleware chain, all of it on the event loop.

Why: under ASGI each of Django's ``MiddlewareMixin`` middlewares hops to a thread and back around every request
(``process_request`` and ``process_response`` through ``sync_to_async``; the CSRF check's ``process_view`` too): about
13 hops per call, 2-5 ms on a 2-core machine, for what is microseconds of header arithmetic.

Which requests: a path under ``/v1/`` with an ``Authorization`` header. Such a request is authenticated by its token
alone — ``access.api.authenticate`` never reads the session when the header is there, and a header that is not
``Bearer <token>`` is a 401 — so it needs none of these (``SKIPPED``):

- sessions and ``AuthenticationMiddleware``: ``request.user`` comes from the token;
- CSRF: it stops forged requests that ride on a browser's cookies; a browser never adds a bearer token by itself
  (session callers of ``/v1/``, the app's own pages, keep the full chain and their CSRF check);
- messages (pages' notices), axes (login lock-outs: there is no login here), static files (none under ``/v1/``).

Everything else runs as in ``settings.MIDDLEWARE``: the security middleware (HTTPS redirect, HSTS, nosniff, referrer
and opener policies), ``CommonMiddleware`` and ``X-Frame-Options`` — called on the event loop (``ON_LOOP``: they only
read the request and set headers) —, the JSON error and CSP middlewares (async already), and any middleware added
later unless it is listed here. Other requests (pages, ``/api/``, ``/v1/`` with a session) take the full chain.

Django also gives every request its own thread for "thread-sensitive" sync code (``ThreadSensitiveContext``), started
for the request signals' receivers and ``response.close()`` alone on this chain: ~1-2 ms per call on 2 busy cores.
Here that code (those short receivers: closing that thread's own stale connections, resetting query logs) runs in
asgiref's one shared thread instead; the views' database work never runs thread-sensitive (serving.openai_api).
"""
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

PREFIX = "/v1/"
SKIPPED = {
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",
    "coe_site.static_middleware.StaticFilesMiddleware",
}
ON_LOOP = {
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
}


def takes(scope):
    """Does this HTTP request take the token chain?"""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.startswith(PREFIX) and any(name == b"authorization" for name, _ in scope.get("headers", ()))


def application(full):
    """The HTTP application: bearer-token ``/v1/`` requests to the token chain, the rest to ``full``."""
    lean = TokenApiHandler()

    async def app(scope, receive, send):
        await (lean if takes(scope) else full)(scope, receive, send)

    return app


def _on_loop(cls):
    """``cls``, a MiddlewareMixin whose hooks only read the request and set headers, called on the event loop."""
    class OnLoop(cls):
        async def __acall__(self, request):
            response = self.process_request(request) if hasattr(self, "process_request") else None
            response = response or await self.get_response(request)
            return self.process_response(request, response) if hasattr(self, "process_response") else response

    OnLoop.__name__ = OnLoop.__qualname__ = f"{cls.__name__}OnLoop"
    return OnLoop


class TokenApiHandler(ASGIHandler):
    async def __call__(self, scope, receive, send):
        """ASGIHandler.__call__ (``application`` passes only HTTP) without a thread of its own per request."""
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async=False):
        """BaseHandler.load_middleware (async: this is an ASGI handler) over settings.MIDDLEWARE without SKIPPED."""
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        handler, handler_is_async = convert_exception_to_response(self._get_response_async), True
        for path in reversed(settings.MIDDLEWARE):
            if path in SKIPPED:
                continue
            middleware = _on_loop(import_string(path)) if path in ON_LOOP else import_string(path)
            middleware_is_async = getattr(middleware, "async_capable", False)
            adapted = self.adapt_method_mode(middleware_is_async, handler, handler_is_async, debug=settings.DEBUG,
                                             name=f"middleware {path}")
            try:
                instance = middleware(adapted)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, self.adapt_method_mode(True, instance.process_view))
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(
                    self.adapt_method_mode(True, instance.process_template_response))
            if hasattr(instance, "process_exception"):  # Django calls these synchronously (in a thread)
                self._exception_middleware.append(self.adapt_method_mode(False, instance.process_exception))
            handler, handler_is_async = convert_exception_to_response(instance), middleware_is_async
        self._middleware_chain = self.adapt_method_mode(True, handler, handler_is_async)
