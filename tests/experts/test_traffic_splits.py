"""Traffic splits: a share of a category's prompts goes to another expert, by a stable key of the prompt text;
validated, versioned, audited, rolled back and kept across edits that do not know about them, on every edit path."""
import json

import pytest
from django.test import Client

from access.services import issue_token
from experts.models import AuditEntry, Expert, MapVersion
from experts.selectors import current_map, diff_versions, split_key
from experts.services import MapError, publish_map, rollback_map, save_expert
from experts.category_services import retire_category
from routing.models import RoutingDecision
from routing.services import route_prompts

pytestmark = pytest.mark.django_db
CANARY = "gemma-2-9b-it"


def assignments():
    return dict(current_map().assignments)


def split_everything(share):
    """Every category sends ``share`` of its prompts to CANARY (or to Qwen2-7B where CANARY already serves it)."""
    snap = current_map()
    return {c: {"expert": CANARY if e != CANARY else "qwen2-7b-instruct", "share": share}
            for c, e in snap.assignments.items()}


def test_split_key_is_stable_and_uniform():
    keys = [split_key(f"prompt number {i}") for i in range(4000)]
    assert split_key("hello") == split_key("hello") == pytest.approx(0.1755723, abs=1e-7)  # SHA-256 of the text
    assert 0.47 < sum(k < 0.5 for k in keys) / len(keys) < 0.53 and all(0 <= k < 1 for k in keys)


def test_routed_prompts_follow_the_split_by_their_key(active_router, user):
    splits = split_everything(0.5)
    publish_map(base_version=1, assignments=assignments(), note="half of everything to a canary", user=user, splits=splits)
    prompts = [f"Please help me with task number {i}: write a short poem about rivers and code" for i in range(60)]
    prompts += [f"What is {i} times {i + 7}?" for i in range(60)]
    decisions = route_prompts(prompts=prompts, source="api")
    snap = current_map()
    moved = 0
    for prompt, d in zip(prompts, decisions):
        category = d["category"] if d["category"] in snap.assignments else "general"
        expected = splits[category]["expert"] if split_key(prompt) < 0.5 else snap.assignments[category]
        assert d["expert"] == expected, (prompt, d)
        moved += d["expert"] == splits[category]["expert"]
    assert 35 < moved < 85  # about half, decided per prompt
    again = route_prompts(prompts=prompts[:20], source="api")
    assert [d["expert"] for d in again] == [d["expert"] for d in decisions[:20]]  # same prompt, same expert


def test_unmapped_category_uses_the_fallbacks_split():
    snap = current_map()
    general = snap.assignments["general"]
    publish_map(base_version=1, assignments=assignments(), note="", splits={"general": {"expert": CANARY, "share": 0.999}})
    below = next(f"p{i}" for i in range(1000) if split_key(f"p{i}") < 0.999)
    assert current_map().expert_for("no-such-category", "general", below)[0] == CANARY
    assert current_map().expert_for("no-such-category", "general")[0] == general  # no prompt: the main expert


@pytest.mark.parametrize("splits, message", [
    ({"math": {"expert": "nobody", "share": 0.2}}, "unknown expert nobody"),
    ({"nowhere": {"expert": CANARY, "share": 0.2}}, "split of unmapped category nowhere"),
    ({"math": {"expert": "qwen2-72b-instruct", "share": 0.2}}, "already serves the whole category"),
    ({"math": {"expert": CANARY, "share": 0}}, "share must be a fraction between 0 and 1"),
    ({"math": {"expert": CANARY, "share": 1}}, "share must be a fraction between 0 and 1"),
    ({"math": {"expert": CANARY, "share": True}}, "share must be a fraction between 0 and 1"),
    ({"math": {"expert": CANARY, "share": "10%"}}, "share must be a fraction between 0 and 1"),
    ({"math": {"expert": CANARY}}, 'must be {"expert": name, "share": fraction}'),
    (["math"], "splits must be an object"),
])
def test_bad_splits_are_refused_and_nothing_is_saved(splits, message):
    assert assignments()["math"] == "qwen2-72b-instruct"
    with pytest.raises(MapError, match=message.replace("{", r"\{").replace("}", r"\}")):
        publish_map(base_version=1, assignments=assignments(), note="", splits=splits)
    assert MapVersion.objects.count() == 1


def test_disabled_experts_cannot_take_a_split_nor_be_disabled_while_they_do():
    save_expert(name="spare-7b", data={"model_id": "example/spare-7b", "parameters": 7_000_000_000, "enabled": False})
    with pytest.raises(MapError, match="disabled expert spare-7b"):
        publish_map(base_version=1, assignments=assignments(), note="", splits={"math": {"expert": "spare-7b", "share": 0.1}})
    publish_map(base_version=1, assignments=assignments(), note="", splits={"math": {"expert": CANARY, "share": 0.1}})
    serving = sorted(c for c, e in assignments().items() if e == CANARY) + ["math"]
    with pytest.raises(MapError, match=f"serves {', '.join(sorted(serving))} in the current map"):
        save_expert(name=CANARY, data={"enabled": False})


def test_splits_are_kept_by_edits_that_do_not_name_them_and_end_when_the_canary_is_promoted(user):
    publish_map(base_version=1, assignments=assignments(), note="canary", user=user, splits={"math": {"expert": CANARY, "share": 0.1},
                                                         "stem": {"expert": CANARY, "share": 0.25}})
    publish_map(base_version=2, assignments={**assignments(), "coding": "gemma-2-27b-it"}, note="unrelated edit")  # splits=None: keep
    assert current_map().splits == {"math": {"expert": CANARY, "share": 0.1},
                                    "stem": {"expert": CANARY, "share": 0.25}}
    publish_map(base_version=3, assignments={**assignments(), "math": CANARY}, note="promote the canary")
    assert current_map().splits == {"stem": {"expert": CANARY, "share": 0.25}}
    retire_category(name="stem", base_version=4, user=user)
    assert current_map().splits == {}
    entry = AuditEntry.objects.get(object_name="v4")
    assert entry.changes["splits"] == {"math": [{"expert": CANARY, "share": 0.1}, None]}


def test_explicit_empty_splits_clear_them_and_rollback_restores_them(user):
    publish_map(base_version=1, assignments=assignments(), note="canary", user=user, splits={"math": {"expert": CANARY, "share": 0.3}})
    publish_map(base_version=2, assignments=assignments(), note="end it", user=user, splits={})
    assert current_map().splits == {}
    rollback_map(version_number=2, user=user)
    assert current_map().splits == {"math": {"expert": CANARY, "share": 0.3}}
    rows = {c: (left, right, changed) for c, left, right, changed in diff_versions(3, 4)}
    assert rows["math"] == ("qwen2-72b-instruct", f"qwen2-72b-instruct (split: {CANARY} 30%)", True)
    assert not rows["coding"][2]


def test_audit_records_split_changes(user):
    publish_map(base_version=1, assignments=assignments(), note="canary", user=user, splits={"math": {"expert": CANARY, "share": 0.3}})
    assert AuditEntry.objects.get(object_name="v2").changes == {
        "note": "canary", "assignments": {}, "splits": {"math": [None, {"expert": CANARY, "share": 0.3}]}}


def api(user, method, url, body=None):
    headers = {"Authorization": f"Bearer {issue_token(user=user, scopes=['read', 'map:write'])[0]}"}
    if method == "get":
        return Client().get(url, headers=headers)
    return Client().post(url, data=json.dumps(body), content_type="application/json", headers=headers)


def test_api_reads_writes_and_previews_splits(editor, active_router):
    route_prompts(prompts=[f"Solve {i} + {i * 3} step by step" for i in range(40)], source="api")
    split = {"math": {"expert": CANARY, "share": 0.5}}
    r = api(editor, "post", "/api/map/preview", {"assignments": assignments(), "splits": split})
    plain = api(editor, "post", "/api/map/preview", {"assignments": assignments()}).json()
    assert r.status_code == 200 and plain["changed"] == 0
    maths = RoutingDecision.objects.filter(category="math").count()
    after = r.json()["per_expert"][CANARY]["after"]
    assert 0 < r.json()["changed"] <= maths and after == plain["per_expert"][CANARY]["after"] + r.json()["changed"]
    r = api(editor, "post", "/api/map", {"base_version": 1, "assignments": assignments(), "splits": split})
    assert r.status_code == 200 and r.json()["splits"] == split
    assert api(editor, "get", "/api/map").json()["splits"] == split
    r = api(editor, "post", "/api/map", {"base_version": 2, "assignments": assignments(),
                                         "splits": {"math": {"expert": CANARY, "share": 2}}})
    assert r.status_code == 400 and "share must be a fraction" in r.json()["error"]["message"]
    r = api(editor, "post", "/api/map/preview", {"assignments": assignments(), "splits": {"math": "half"}})
    assert r.status_code == 400


def form_data(**changes):
    data = {f"assign-{c}": e for c, e in assignments().items()}
    data.update(base_version=current_map().version, note="", **changes)
    return data


def test_editor_page_saves_splits_in_percent_and_shows_them(editor):
    c = Client()
    c.force_login(editor)
    r = c.post("/map/", form_data(**{"split-math": CANARY, "share-math": "12.5"}))
    assert r.status_code == 302 and current_map().splits == {"math": {"expert": CANARY, "share": 0.125}}
    page = c.get("/map/").content.decode()
    assert 'name="share-math" aria-label="math split share (%)" min="0.1" max="99.9" step="0.1" value="12.5"' in page
    assert f"qwen2-72b-instruct <span class=\"muted split\">(split: {CANARY} 12.5%)</span>" in c.get("/").content.decode()
    r = c.post("/map/", form_data(**{"split-math": CANARY, "share-math": "lots"}))
    assert r.status_code == 400 and "give the share sent to gemma-2-9b-it in percent" in r.content.decode()
    r = c.post("/map/", form_data(**{"split-math": CANARY, "share-math": "100"}))
    assert r.status_code == 400 and current_map().version == 2
    r = c.post("/map/", form_data())  # the form always sends its split columns: none chosen ends the split
    assert r.status_code == 302 and current_map().splits == {}


def test_admin_add_version_with_a_split():
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser("boss", password="boss-pass-123")
    c = Client()
    c.force_login(staff)
    data = {f"assign_{k}": v for k, v in assignments().items()}
    data.update({"note": "admin canary", "split_coding": CANARY, "share_coding": "5", "base_version": 1})
    r = c.post("/admin/experts/mapversion/add/", data)
    assert r.status_code == 302 and current_map().splits == {"coding": {"expert": CANARY, "share": 0.05}}
    data.update({"split_coding": CANARY, "share_coding": "", "base_version": 2})
    r = c.post("/admin/experts/mapversion/add/", data)
    assert r.status_code == 200 and "Give the share (%) sent to the split expert." in r.content.decode()
    data.update({"split_coding": data["assign_coding"], "share_coding": "5"})
    r = c.post("/admin/experts/mapversion/add/", data)
    assert r.status_code == 200 and "already serves the whole category" in r.content.decode()
    assert Expert.objects.get(name=CANARY).enabled and current_map().version == 2
    assert AuditEntry.objects.filter(object_type="map").count() == 1  # the form's dry runs left nothing behind
