"""GET/POST /api/map, rollback, preview: status codes, messages and permissions."""
import json

import pytest
from django.test import Client

from access.services import issue_token
from experts.models import AuditEntry, MapVersion
from experts.selectors import current_map
from routing.services import route_prompts

pytestmark = pytest.mark.django_db


def call(user, method, url, body=None):
    headers = {"Authorization": f"Bearer {issue_token(user=user, scopes=['read', 'map:write'])[0]}"}
    if method == "get":
        return Client().get(url, headers=headers)
    return Client().post(url, data=json.dumps(body), content_type="application/json", headers=headers)


def test_get_map(user):
    r = call(user, "get", "/api/map")
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == 1 and body["assignments"]["general"] == "llama-3.1-70b-instruct"
    assert len(body["assignments"]) == 9 and body["note"] == "Default map"


def test_anonymous_cannot_read_the_map():
    assert Client().get("/api/map").status_code == 401


def test_editor_publishes_a_version(editor):
    new = {**current_map().assignments, "math": "gemma-2-27b-it"}
    r = call(editor, "post", "/api/map", {"base_version": 1, "assignments": new, "note": "try gemma"})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["author"] == "editor"
    assert current_map().assignments["math"] == "gemma-2-27b-it"
    assert AuditEntry.objects.filter(actor=editor, action="publish").exists()


def test_stale_base_is_409_and_nothing_is_lost(editor):
    first = {**current_map().assignments, "math": "gemma-2-27b-it"}
    second = {**current_map().assignments, "coding": "gemma-2-27b-it"}
    assert call(editor, "post", "/api/map", {"base_version": 1, "assignments": first}).status_code == 200
    r = call(editor, "post", "/api/map", {"base_version": 1, "assignments": second})
    assert r.status_code == 409
    assert r.json()["error"]["current_version"] == 2 and "out of date" in r.json()["error"]["message"]
    assert current_map().assignments["math"] == "gemma-2-27b-it"  # the first edit survives
    assert current_map().assignments["coding"] == "qwen2-72b-instruct"


def test_unknown_names_are_400_and_named(editor):
    bad = {**current_map().assignments, "poetry": "gpt-9", "math": "mystery-model"}
    r = call(editor, "post", "/api/map", {"base_version": 1, "assignments": bad})
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "unknown category: poetry" in message and "unknown experts: gpt-9, mystery-model" in message
    assert call(editor, "post", "/api/map", {"base_version": "1", "assignments": bad}).status_code == 400
    assert MapVersion.objects.count() == 1


def test_user_without_permission_gets_403(user):
    new = {**current_map().assignments, "math": "gemma-2-27b-it"}
    assert call(user, "post", "/api/map", {"base_version": 1, "assignments": new}).status_code == 403
    assert call(user, "post", "/api/map/rollback", {"version": 1}).status_code == 403
    assert call(user, "post", "/api/router/retrain", {}).status_code == 403
    assert MapVersion.objects.count() == 1


def test_staff_may_edit_without_the_permission(user):
    user.is_staff = True
    user.save()
    assert not user.has_perm("experts.edit_map")  # staff, but never granted the permission
    new = {**current_map().assignments, "math": "gemma-2-27b-it"}
    r = call(user, "post", "/api/map", {"base_version": 1, "assignments": new, "note": "staff edit"})
    assert r.status_code == 200
    assert (r.json()["version"], r.json()["author"], r.json()["assignments"]) == (2, "operator", new)
    version = MapVersion.objects.get(number=2)
    assert (version.author, version.note) == (user, "staff edit")
    assert {a.category.name: a.expert.name for a in version.assignments.all()} == new
    assert current_map().version == 2 and current_map().assignments == new
    assert AuditEntry.objects.filter(actor=user, action="publish").count() == 1


def test_rollback(editor):
    original = dict(current_map().assignments)
    call(editor, "post", "/api/map", {"base_version": 1, "assignments": {**original, "math": "gemma-2-27b-it"}})
    r = call(editor, "post", "/api/map/rollback", {"version": 1})
    assert r.status_code == 200 and r.json()["version"] == 3 and r.json()["rolled_back_from"] == 1
    assert current_map().assignments == original
    assert call(editor, "post", "/api/map/rollback", {"version": 42}).status_code == 400


def test_preview_remaps_recent_decisions(user, active_router):
    route_prompts(prompts=["Solve 3x + 1 = 10 for x.", "Integrate x^2 dx.", "Write a haiku about frost."], source="api")
    draft = {**current_map().assignments, "math": "qwen2-7b-instruct"}
    r = call(user, "post", "/api/map/preview", {"assignments": draft, "n": 1000})
    assert r.status_code == 200
    p = r.json()
    assert p["decisions"] == 3 and p["changed"] == 2
    assert p["per_expert"]["qwen2-72b-instruct"] == {"before": 2, "after": 0}
    assert p["per_expert"]["qwen2-7b-instruct"] == {"before": 0, "after": 2}
    assert p["avg_active_params_after"] < p["avg_active_params_before"]
    assert p["switches"]["before"] >= 2 and p["switches"]["after"] >= 2
    assert call(user, "post", "/api/map/preview", {"assignments": draft, "n": 0}).status_code == 400
