"""Expert backends cannot be turned against the server: no secret exfiltration through api_key_env, no SSRF through
base_url, no upstream error bodies echoed to callers (issue 11, items 1 and 2)."""
import json

import httpx
import pytest
from django.test import Client

from access.services import issue_token
from experts.backends.egress import EgressRefused, check_base_url, check_key_env
from experts.models import AuditEntry, Expert
from tests.conftest import make_user
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import asgi_server

NAME = "qwen2-7b-instruct"


def patch(user, body, scopes=("read", "map:write", "admin")):
    client = Client(headers={"Authorization": f"Bearer {issue_token(user=user, scopes=list(scopes))[0]}"})
    return client.patch(f"/api/experts/{NAME}", data=json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_a_map_editor_cannot_change_how_an_expert_is_served(settings):
    editor = make_user("mapper", "Map editors")
    r = patch(editor, {"backend": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                                   "api_key_env": "DJANGO_SECRET_KEY"}})
    assert r.status_code == 403 and "access.edit_backends" in r.json()["error"]["message"]
    expert = Expert.objects.get(name=NAME)
    assert (expert.backend, expert.base_url, expert.api_key_env) == ("simulated", "", "")
    assert not AuditEntry.objects.filter(object_type="expert").exists()
    r = patch(editor, {"description": "fine"})  # catalogue fields stay the map editor's
    assert r.status_code == 200 and Expert.objects.get(name=NAME).description == "fine"


@pytest.mark.django_db
def test_backend_settings_need_the_admin_scope_on_a_token():
    admin = make_user("backends", "Backend admins")
    r = patch(admin, {"timeout_s": 12}, scopes=("read", "map:write"))
    assert r.status_code == 403 and "'admin' scope" in r.json()["error"]["message"]
    assert patch(admin, {"timeout_s": 12}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("env_name", ["DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "HOME"])
def test_only_allowed_variables_may_hold_an_upstream_key(env_name, settings):
    settings.COE_UPSTREAM_ALLOWED_HOSTS = ["127.0.0.1"]
    admin = make_user("backends", "Backend admins")
    r = patch(admin, {"backend": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": env_name}})
    assert r.status_code == 400 and "not an allowed key variable" in r.json()["error"]["message"]
    assert Expert.objects.get(name=NAME).api_key_env == ""
    settings.COE_API_KEY_ENVS = [env_name]  # an operator may list a name explicitly
    assert patch(admin, {"backend": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                                     "api_key_env": env_name}}).status_code == 200


@pytest.mark.parametrize("url, message", [
    ("http://evil.example:8000/v1", "not allowed"),
    ("http://10.0.0.5/v1", "not allowed"),
    ("http://169.254.169.254/latest", "not allowed"),
    ("http://user:pw@127.0.0.1:8000/v1", "credentials"),
    ("http://127.0.0.1:8000/v1?x=", "query string"),
    ("http://127.0.0.1:8000/v1#frag", "query string or fragment"),
    ("ftp://127.0.0.1/v1", "http:// or https://"),
    ("http://[::1", "not a valid URL"),
])
def test_base_url_rules(url, message):
    with pytest.raises(EgressRefused, match=message):
        check_base_url(url, ["127.0.0.1", "localhost", "*.corp.example", "192.168.0.0/16"])


def test_base_url_allow_list_matches_names_wildcards_and_networks():
    allowed = ["vllm", "*.corp.example", "192.168.0.0/16"]
    for url in ("http://vllm:8000/v1", "https://a.b.corp.example/v1", "http://192.168.7.9/v1"):
        assert check_base_url(url, allowed) == url
    with pytest.raises(EgressRefused):
        check_base_url("http://corp.example.evil.com/v1", allowed)
    assert check_base_url("http://anything:1/v1", ["*"])
    assert check_key_env("COE_KEY_VLLM", "COE_KEY_", []) == "COE_KEY_VLLM"
    with pytest.raises(EgressRefused):
        check_key_env("VLLM_KEY", "COE_KEY_", [])


@pytest.fixture
def server(transactional_db, active_router, settings):
    from experts import backend_registry

    settings.COE_FALLBACK_EXPERT = NAME  # no second expert to fall back to: the caller sees the failure itself
    backend_registry._board = None
    with asgi_server() as url:
        yield url
    backend_registry._board = None


def chat(server, user, model=NAME):
    token = issue_token(user=user, scopes=["chat"])[0]
    return httpx.post(f"{server}/v1/chat/completions", timeout=30, headers={"Authorization": f"Bearer {token}"},
                      json={"model": model, "messages": [{"role": "user", "content": "Say hi."}]})


def test_a_stored_key_variable_outside_the_allow_list_is_never_sent(server, user, monkeypatch, settings):
    """A row stored before the rules (or written around them) still cannot send a server secret upstream."""
    monkeypatch.setenv("DJANGO_SECRET_KEY", "server-secret-value")
    with FakeOpenAI() as fake:
        Expert.objects.filter(name=NAME).update(backend="openai", base_url=fake.base_url,
                                                api_key_env="DJANGO_SECRET_KEY", max_retries=0)
        r = chat(server, user)
        assert r.status_code == 503 and "misconfigured" in r.json()["error"]["message"]
        assert not fake.requests  # the upstream was never called, with or without the secret
        assert "server-secret-value" not in r.text


def test_upstream_error_bodies_and_addresses_stay_in_the_log(server, user, caplog):
    with FakeOpenAI() as fake:
        fake.behaviour.update(mode="error", status=500, error_message="INTERNAL-DETAIL db=10.1.2.3")
        Expert.objects.filter(name=NAME).update(backend="openai", base_url=fake.base_url, max_retries=0)
        r = chat(server, user)
    assert r.status_code == 503 and r.headers["content-type"].startswith("application/json")
    assert "INTERNAL-DETAIL" not in r.text and fake.base_url not in r.text and "127.0.0.1" not in r.text
    assert "HTTP 500" in r.json()["error"]["message"]
    assert any("INTERNAL-DETAIL" in rec.getMessage() for rec in caplog.records)  # the operator can see it


def test_redirects_are_not_followed(server, user):
    """An upstream answering 302 to another host must not make us call that host (or show its answer)."""
    import http.server
    import threading

    with FakeOpenAI() as target:
        class Redirect(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.send_response(302)
                self.send_header("Location", f"{target.base_url}/chat/completions")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        redirector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=redirector.serve_forever, daemon=True).start()
        try:
            Expert.objects.filter(name=NAME).update(
                backend="openai", base_url=f"http://127.0.0.1:{redirector.server_address[1]}/v1", max_retries=0)
            r = chat(server, user)
        finally:
            redirector.shutdown()
        assert r.status_code == 503 and "redirect" in r.json()["error"]["message"]
        assert not target.requests
