"""Bearer-token calls to /v1/ take a shorter middleware chain on the event loop (coe_site/token_api.py); they keep
every property that applies to them, and every other request keeps the full chain."""
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref import sync
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

from coe_site import token_api

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def scope(path, headers=(), method="GET"):
    return {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "scheme": "http", "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80), "headers": [(b"host", b"127.0.0.1"), *headers]}


async def call(app, path, headers=(), method="GET", body=b""):
    """(status, {header: value}, body) of one request to an ASGI ``app``."""
    comm = ApplicationCommunicator(app, scope(path, headers, method))
    await comm.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await comm.receive_output(20)
    content = b""
    while True:
        message = await comm.receive_output(20)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    await comm.wait(5)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, content


def bearer(token):
    return [(b"authorization", f"Bearer {token}".encode())]


async def issued(user):
    from access.services import issue_token

    return (await sync_to_async(issue_token)(user=user))[0]


async def session_cookie(user):
    from django.test import Client

    def login():
        client = Client()
        client.force_login(user)
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={await sync_to_async(login)()}".encode())]


async def test_which_requests_take_the_token_chain():
    auth = (b"authorization", b"Bearer x")
    assert token_api.takes(scope("/v1/models", [auth]))
    assert token_api.takes(scope("/v1/chat/completions", [auth], "POST"))
    assert not token_api.takes(scope("/v1/models"))  # a session caller (the app's pages)
    assert not token_api.takes(scope("/api/map", [auth]))
    assert not token_api.takes(scope("/v1x/models", [auth]))
    assert token_api.takes({**scope("/coe/v1/models", [auth]), "root_path": "/coe"})  # mounted under a prefix


async def test_the_chain_is_the_settings_chain_without_what_only_browsers_need(monkeypatch):
    built = []
    real = token_api.import_string
    monkeypatch.setattr(token_api, "import_string", lambda path: built.append(path) or real(path))
    token_api.TokenApiHandler()
    assert built == [m for m in reversed(settings.MIDDLEWARE) if m not in token_api.SKIPPED]
    assert "django.middleware.security.SecurityMiddleware" in built and "coe_site.errors.ErrorsMiddleware" in built
    assert token_api.SKIPPED == {  # each one's reason is in coe_site/token_api.py
        "django.contrib.sessions.middleware.SessionMiddleware", "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware", "axes.middleware.AxesMiddleware",
        "coe_site.static_middleware.StaticFilesMiddleware"}


async def test_no_middleware_hook_hops_to_a_thread_and_no_thread_is_started(monkeypatch, user):
    token = await issued(user)
    full, lean = ASGIHandler(), token_api.TokenApiHandler()
    await call(full, "/v1/models", bearer(token))  # warm: the view's own pool exists
    hopped, pools = [], []
    real_hop, real_pool = sync.SyncToAsync.__init__, ThreadPoolExecutor.__init__

    def hop(self, func, *args, **kwargs):
        hopped.append(getattr(func, "__qualname__", repr(func)))
        real_hop(self, func, *args, **kwargs)

    def pool(self, *args, **kwargs):
        pools.append(1)
        real_pool(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__init__", hop)
    monkeypatch.setattr(ThreadPoolExecutor, "__init__", pool)
    status, _, _ = await call(full, "/v1/models", bearer(token))
    assert status == 200 and any("Middleware" in name for name in hopped)  # the full chain does (the probes work)
    assert pools  # Django's thread of the request's own
    hopped.clear(), pools.clear()
    status, _, _ = await call(lean, "/v1/models", bearer(token))
    assert status == 200 and not [name for name in hopped if "Middleware" in name] and not pools


async def test_the_same_headers_as_the_full_chain(user):
    token = await issued(user)
    for headers in (bearer(token), bearer("not-a-token")):
        full = await call(ASGIHandler(), "/v1/models", headers)
        lean = await call(token_api.TokenApiHandler(), "/v1/models", headers)
        assert lean[0] == full[0] and lean[1] == full[1]
    status, headers, _ = lean
    assert status == 401 and headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "same-origin"


async def test_https_is_still_enforced(settings):
    settings.SECURE_SSL_REDIRECT = True
    status, headers, _ = await call(token_api.TokenApiHandler(), "/v1/models", bearer("x"))
    assert status == 301 and headers["location"] == "https://127.0.0.1/v1/models"


async def test_a_bearer_call_is_never_authenticated_by_a_session(user):
    app = token_api.application(ASGIHandler())
    status, _, body = await call(app, "/v1/models", [*await session_cookie(user), *bearer("not-a-token")])
    assert status == 401 and b"Invalid, expired or revoked" in body


async def test_session_callers_keep_the_full_chain_and_its_csrf_check(user):
    app = token_api.application(ASGIHandler())
    cookie = await session_cookie(user)
    status, _, body = await call(app, "/v1/models", cookie)
    assert status == 200 and b'"coe"' in body
    status, _, body = await call(app, "/v1/chat/completions", cookie, "POST", b'{"model": "coe", "messages": []}')
    assert status == 403 and b"CSRF" in body
