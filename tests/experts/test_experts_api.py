"""GET /api/experts, GET/PATCH /api/experts/<name>: backend settings, validation, secrets, permissions, health."""
import json

import pytest
from django.core.cache import cache
from django.test import Client

from access.services import issue_token
from experts.models import AuditEntry, Expert

pytestmark = pytest.mark.django_db
NAME = "llama-3.1-70b-instruct"  # a dotted name: the URL and validation must accept it


def call(user, method, url, body=None, scopes=("read", "map:write", "admin")):
    client = Client(headers={"Authorization": f"Bearer {issue_token(user=user, scopes=scopes)[0]}"})
    if method == "get":
        return client.get(url)
    return client.patch(url, data=json.dumps(body), content_type="application/json")


def test_list_shows_every_expert_with_its_backend_and_breaker(user):
    cache.delete("breakers:index")  # the cache (Redis in CI) outlives tests: forget earlier tests' breakers
    data = call(user, "get", "/api/experts").json()["experts"]
    assert {e["name"] for e in data} >= {"qwen2-7b-instruct", NAME}
    first = data[0]
    assert first["backend"]["kind"] == "simulated" and first["backend"]["simulated"] is True
    assert first["breaker"] == {"state": "closed"}


def test_patch_sets_an_openai_backend_and_never_shows_the_key(backend_admin, upstreams, monkeypatch):
    monkeypatch.setenv("COE_KEY_VLLM", "sk-secret-value")
    r = call(backend_admin, "patch", f"/api/experts/{NAME}", {"backend": {
        "kind": "openai", "base_url": "http://vllm:8000/v1", "upstream_model": "meta-llama/Llama-3.1-70B-Instruct",
        "api_key_env": "COE_KEY_VLLM", "timeout_s": 30, "max_retries": 1}})
    assert r.status_code == 200, r.content
    backend = r.json()["backend"]
    assert (backend["kind"], backend["base_url"], backend["api_key_env"], backend["api_key_set"]) == \
        ("openai", "http://vllm:8000/v1", "COE_KEY_VLLM", True)
    assert "sk-secret-value" not in r.content.decode()
    expert = Expert.objects.get(name=NAME)
    assert (expert.backend, expert.timeout_s, expert.max_retries) == ("openai", 30, 1)
    entry = AuditEntry.objects.filter(object_name=NAME).first()
    assert entry.changes["backend"] == ["simulated", "openai"] and "sk-secret-value" not in json.dumps(entry.changes)


@pytest.mark.parametrize("body, message", [
    ({"backend": "openai"}, "needs base_url"),
    ({"backend": "transformers"}, "needs model_path"),
    ({"backend": "simulated", "sim_preset": "tpu-v9"}, "unknown sim_preset"),
    ({"timeout_s": 0}, "timeout_s must be"),
    ({"max_retries": 99}, "max_retries must be"),
    ({"generation": {"max_new_tokens": 8, "beam_width": 3}}, "unknown generation setting"),
    ({"api_key_env": "not a name"}, "environment variable name"),
    ({"api_key": "sk-x"}, "API keys are not stored"),
    ({"colour": "blue"}, "unknown field"),
])
def test_patch_rejects_bad_settings_with_a_clear_message(backend_admin, upstreams, body, message):
    r = call(backend_admin, "patch", f"/api/experts/{NAME}", body)
    assert r.status_code == 400 and message in r.json()["error"]["message"]
    assert Expert.objects.get(name=NAME).backend == "simulated"  # nothing saved


def test_patch_needs_permission_and_an_existing_expert(user, editor):
    assert Expert.objects.get(name=NAME).enabled
    assert call(user, "patch", f"/api/experts/{NAME}", {"enabled": False}).status_code == 403
    assert Expert.objects.get(name=NAME).enabled  # refused means unchanged
    assert call(editor, "patch", "/api/experts/no-such-expert", {"enabled": True}).status_code == 404
    assert Client().get("/api/experts").status_code == 401


def test_breaker_state_from_other_processes_is_shown(user):
    cache.set("breakers:index", ["host:1"], None)
    cache.set("breakers:host:1", {"at": 1e12, "experts": {NAME: {"state": "open", "failures": 5,
                                                                 "retry_in_s": 30}}}, 60)
    try:
        r = call(user, "get", f"/api/experts/{NAME}").json()
        assert r["breaker"]["state"] == "open" and r["breaker"]["failures"] == 5
    finally:
        cache.delete_many(["breakers:index", "breakers:host:1"])


def test_every_backend_kind_an_expert_can_choose_exists():
    from experts.backends.base import BACKENDS
    from experts.models import BACKENDS as CHOICES

    assert {kind for kind, _ in CHOICES} == set(BACKENDS)


def test_backends_are_cached_per_configuration_even_with_list_settings():
    from experts import backend_registry
    from experts.services import save_expert

    expert = save_expert(name=NAME, data={"generation": {"max_new_tokens": 8, "stop": ["\n\n"]}})
    first = backend_registry.backend_for(expert)
    assert backend_registry.backend_for(Expert.objects.get(name=NAME)) is first  # same settings: same object
    expert.generation = {"stop": ["\n\n"], "max_new_tokens": 8}  # how PostgreSQL's jsonb orders the keys
    assert backend_registry.backend_for(expert) is first
    changed = save_expert(name=NAME, data={"generation": {"max_new_tokens": 9, "stop": ["\n\n"]}})
    assert backend_registry.backend_for(changed) is not first  # an edit takes effect on the next call
