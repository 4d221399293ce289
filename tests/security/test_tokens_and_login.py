"""API tokens expire, carry scopes, are revoked by their owner and record when they were last used; logins are
throttled (issue 11, item 8)."""
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from access.models import ApiToken
from access.services import issue_token
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def bearer(token):
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_expired_tokens_are_refused(user, active_router, monkeypatch):
    """The token's hour passes (the clock moves; lookups are cached per process, and a cached token expires on time
    too — a change made by SQL is bounded by COE_AUTH_CACHE_S instead: tests/security/test_token_cache.py)."""
    import access.services

    token, row = issue_token(user=user, scopes=["route"], expires="1h")
    for _ in range(2):  # the second from the cache, if its subscription is up by then
        assert bearer(token).post("/api/route", {"prompt": "Solve 2x = 4."}, content_type="application/json") \
            .status_code == 200
    later = row.expires_at + timedelta(seconds=1)
    monkeypatch.setattr(access.services, "timezone", type("Clock", (), {"now": staticmethod(lambda: later)}))
    r = bearer(token).post("/api/route", {"prompt": "Solve 2x = 4."}, content_type="application/json")
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_scopes_narrow_what_a_token_may_do(user, active_router):
    editor = make_user("ed", "Map editors")
    chat_only = issue_token(user=user, scopes=["chat"])[0]
    r = bearer(chat_only).post("/api/route", {"prompt": "hello"}, content_type="application/json")
    assert r.status_code == 403 and "'route' scope" in r.json()["error"]["message"]
    assert bearer(chat_only).get("/api/map").status_code == 403  # not even read
    reader = issue_token(user=editor, scopes=["read"])[0]
    assert bearer(reader).get("/api/map").status_code == 200
    r = bearer(reader).post("/api/map", {"base_version": 1, "assignments": {}}, content_type="application/json")
    assert r.status_code == 403 and "map:write" in r.json()["error"]["message"]
    wide = issue_token(user=user, scopes=["admin"])[0]  # every scope, but still only what the user may do
    r = bearer(wide).post("/api/map", {"base_version": 1, "assignments": {}}, content_type="application/json")
    assert r.status_code == 403 and "edit map" in r.json()["error"]["message"]


def test_last_used_is_recorded(user, active_router):
    token, row = issue_token(user=user)
    assert row.last_used_at is None
    bearer(token).get("/api/map")
    assert ApiToken.objects.get(pk=row.pk).last_used_at is not None


def test_owners_manage_their_tokens_on_the_page_and_by_api(user):
    alice, bob = Client(), Client()
    alice.force_login(user)
    bob.force_login(make_user("bob", "Operators"))
    r = alice.post("/account/tokens/", {"name": "nightly-xyz", "scopes": ["batches", "read"], "expires": "30d"})
    shown = r.content.decode()
    row = ApiToken.objects.get(name="nightly-xyz")
    assert row.scopes == ["batches", "read"] and 29 <= (row.expires_at - timezone.now()).days <= 30
    token = shown.split('id="issued-token">')[1].split("<")[0]
    assert row.key_hash not in shown and bearer(token).get("/api/map").status_code == 200
    assert "nightly-xyz" not in bob.get("/account/tokens/").content.decode()
    assert bob.post(f"/account/tokens/{row.pk}/revoke/").status_code == 302
    assert ApiToken.objects.filter(pk=row.pk).exists()  # not bob's to revoke
    alice.post(f"/account/tokens/{row.pk}/revoke/")
    assert not ApiToken.objects.filter(pk=row.pk).exists()
    assert bearer(token).get("/api/map").status_code == 401

    admin_token = issue_token(user=user, scopes=["admin"])[0]
    made = bearer(admin_token).post("/api/tokens", json.dumps({"name": "ci", "scopes": ["route"], "expires": "7d"}),
                                    content_type="application/json").json()
    assert made["scopes"] == ["route"] and made["token"]
    listed = bearer(admin_token).get("/api/tokens").json()["tokens"]
    assert {t["name"] for t in listed} == {"", "ci"} and all("token" not in t for t in listed)
    assert bearer(issue_token(user=user, scopes=["read"])[0]).get("/api/tokens").status_code == 403
    assert bearer(admin_token).delete(f"/api/tokens/{made['id']}").json() == {"revoked": made["id"]}
    assert bearer(made["token"]).post("/api/route", {"prompt": "x"}, content_type="application/json") \
        .status_code == 401
    r = bearer(admin_token).post("/api/tokens", json.dumps({"scopes": ["root"]}), content_type="application/json")
    assert r.status_code == 400 and "unknown scope" in r.json()["error"]["message"]


def test_logins_are_throttled_per_username_and_address(user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client(REMOTE_ADDR="10.9.8.7")
    for _ in range(2):
        r = client.post("/accounts/login/", {"username": "operator", "password": "wrong"})
        assert r.status_code == 200 and "didn't match" in r.content.decode()
    assert client.post("/accounts/login/", {"username": "operator", "password": "wrong"}).status_code == 429
    r = client.post("/accounts/login/", {"username": "operator", "password": "operator-pass-123"})
    assert r.status_code == 429 and "Too many failed logins" in r.content.decode()  # even the right password
    assert "_auth_user_id" not in client.session
    other = Client(REMOTE_ADDR="10.1.1.1")  # another address is not locked out
    assert other.post("/accounts/login/", {"username": "operator", "password": "operator-pass-123"}).status_code == 302
