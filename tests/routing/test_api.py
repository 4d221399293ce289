"""POST /api/route: auth (session + CSRF, bearer token) and clear 400s for bad input."""
import json

import pytest
from django.test import Client

from access.services import issue_token
from routing.models import RoutingDecision

URL = "/api/route"
pytestmark = pytest.mark.django_db


def post(client, body, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", headers=headers)


def test_anonymous_gets_401():
    r = post(Client(), {"prompt": "hi"})
    assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Bearer")
    assert "Authentication required" in r.json()["error"]["message"]


def test_bad_tokens_get_401(user):
    assert post(Client(), {"prompt": "hi"}, Authorization="Bearer nope").status_code == 401
    assert post(Client(), {"prompt": "hi"}, Authorization="Basic abc").status_code == 401
    token = issue_token(user=user.username)[0]
    user.is_active = False
    user.save()
    assert post(Client(), {"prompt": "hi"}, Authorization=f"Bearer {token}").status_code == 401


def test_token_routes_and_stores_a_decision(user, active_router):
    token = issue_token(user=user.username)[0]
    r = post(Client(), {"prompt": "Solve for x: 3x + 5 = 20."}, Authorization=f"Bearer {token}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["category"] == "math" and body["expert"] == "qwen2-72b-instruct"
    assert body["map_version"] == 1 and body["router_version"] == active_router.version
    for field in ("prompt", "confidence", "entropy", "margin", "fallback", "fallback_reason", "probabilities",
                  "latency_ms"):
        assert field in body
    stored = RoutingDecision.objects.get(pk=body["id"])
    assert (stored.category, stored.expert.name, stored.source) == ("math", "qwen2-72b-instruct", "api")


def test_session_needs_csrf(user, active_router):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    r = post(client, {"prompt": "hello"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    client.get("/")  # sets the csrftoken cookie
    r = post(client, {"prompt": "hello"}, X_CSRFToken=client.cookies["csrftoken"].value)
    assert r.status_code == 200 and r.json()["prompt"] == "hello"
    assert RoutingDecision.objects.count() == 1  # the refused request routed nothing


@pytest.mark.parametrize("body, message", [
    ({}, "Missing field 'prompt'"),
    ({"prompt": ""}, "must not be empty"),
    ({"prompt": "   "}, "must not be empty"),
    ({"prompt": 42}, "must be a string"),
    ({"prompt": ["a"]}, "must be a string"),
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid UTF-8"),
])
def test_bad_input_gets_400(user, active_router, body, message):
    client = Client()
    client.force_login(user)
    r = post(client, body)
    assert r.status_code == 400 and message in r.json()["error"]["message"]
    assert not RoutingDecision.objects.exists()


def test_size_limit_is_configurable(user, active_router, settings):
    settings.COE_ROUTE_MAX_BYTES = 100
    client = Client()
    client.force_login(user)
    r = post(client, {"prompt": "x" * 101})
    assert r.status_code == 400 and "101 bytes; the limit is 100 bytes" in r.json()["error"]["message"]
    assert post(client, {"prompt": "x" * 100}).status_code == 200


def test_default_limit_is_32kb_counted_in_utf8_bytes(user, active_router, settings):
    assert settings.COE_ROUTE_MAX_BYTES == 32768, "COE_ROUTE_MAX_BYTES is set in the environment: unset it"
    client = Client()
    client.force_login(user)
    at_limit = post(client, {"prompt": "word " * 6553 + "abc"})  # 32,768 bytes
    assert at_limit.status_code == 200 and at_limit.json()["category"]
    over = post(client, {"prompt": "word " * 6553 + "abcd"})
    assert over.status_code == 400 and "32769 bytes; the limit is 32768 bytes" in over.json()["error"]["message"]
    # characters are not bytes: 'é' is 2 bytes and '€' 3 in UTF-8
    assert post(client, {"prompt": "é" * 16384}).status_code == 200  # 16,384 characters, 32,768 bytes
    two_byte = post(client, {"prompt": "é" * 16385})  # 16,385 characters, far under 32,768, but 32,770 bytes
    assert two_byte.status_code == 400 and "32770 bytes" in two_byte.json()["error"]["message"]
    assert post(client, {"prompt": "€" * 10923}).status_code == 400  # 32,769 bytes
    assert RoutingDecision.objects.count() == 2  # the refused prompts were not routed


def test_get_is_405(user):
    client = Client()
    client.force_login(user)
    assert client.get(URL).status_code == 405


def test_no_active_router_is_503(user):
    client = Client()
    client.force_login(user)
    r = post(client, {"prompt": "hello"})
    assert r.status_code == 503 and "train_router" in r.json()["error"]["message"]
