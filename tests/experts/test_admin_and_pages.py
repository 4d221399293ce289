"""Admin and in-app edits go through the same services; non-editors see no edit controls and get 403."""
import pytest
from django.test import Client

from experts.models import AuditEntry, MapVersion
from experts.selectors import current_map
from experts.services import publish_map
from experts.models import Category

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("boss", password="boss-pass-123")


def client_for(user):
    c = Client()
    c.force_login(user)
    return c


def test_admin_add_map_version_goes_through_the_service(staff):
    data = {f"assign_{c}": e for c, e in current_map().assignments.items()}
    data.update({"assign_math": "gemma-2-9b-it", "note": "from admin", "base_version": 1})
    r = client_for(staff).post("/admin/experts/mapversion/add/", data)
    assert r.status_code == 302, r.content[:2000]
    assert current_map().version == 2 and current_map().assignments["math"] == "gemma-2-9b-it"
    assert AuditEntry.objects.get(object_name="v2").actor == staff


def test_admin_save_on_an_outdated_version_is_refused(staff):
    c = client_for(staff)
    assert 'name="base_version" value="1"' in c.get("/admin/experts/mapversion/add/").content.decode()
    data = {f"assign_{c}": e for c, e in current_map().assignments.items()}
    publish_map(base_version=1, assignments={**data_assignments(data), "coding": "gemma-2-27b-it"}, note="someone else, meanwhile")
    data.update({"assign_math": "gemma-2-9b-it", "note": "from admin", "base_version": 1})
    r = c.post("/admin/experts/mapversion/add/", data)
    assert r.status_code == 200 and "Map version 1 is out of date: the current version is 2." in r.content.decode()
    assert current_map().version == 2 and current_map().assignments["math"] != "gemma-2-9b-it"


def data_assignments(data):
    return {k[7:]: v for k, v in data.items() if k.startswith("assign_")}


def test_admin_snapshots_are_read_only(staff):
    c = client_for(staff)
    page = c.get(f"/admin/experts/mapversion/{MapVersion.objects.get(number=1).pk}/change/")
    assert page.status_code == 200 and b'name="note"' not in page.content
    assert c.post(f"/admin/experts/mapversion/{MapVersion.objects.get(number=1).pk}/delete/").status_code == 403
    assert MapVersion.objects.filter(number=1).exists()


def test_admin_rollback_action(staff):
    original = dict(current_map().assignments)
    from experts.services import publish_map

    publish_map(base_version=1, assignments={**original, "math": "gemma-2-9b-it"})
    v1 = MapVersion.objects.get(number=1)
    r = client_for(staff).post("/admin/experts/mapversion/", {"action": "roll_back_to_selected",
                                                                "_selected_action": [v1.pk]})
    assert r.status_code == 302 and current_map().version == 3 and current_map().assignments == original


def test_admin_category_edit_is_audited(staff):
    stem = Category.objects.get(name="stem")
    r = client_for(staff).post(f"/admin/experts/category/{stem.pk}/change/",
                               {"name": "stem", "description": "Science!", "seed_prompts": '["Why is ice slippery?"]'})
    assert r.status_code == 302
    assert Category.objects.get(name="stem").seed_prompts == ["Why is ice slippery?"]
    assert AuditEntry.objects.filter(object_type="category", object_name="stem", actor=staff).exists()


def test_editor_page_for_editors_and_viewers(staff, user):
    assert b'id="save-button"' in client_for(staff).get("/map/").content
    viewer = client_for(user).get("/map/")
    assert viewer.status_code == 200 and b'id="save-button"' not in viewer.content
    assert b"Add a category" not in viewer.content
    data = {f"assign-{c}": e for c, e in current_map().assignments.items()}
    assert client_for(user).post("/map/", {**data, "base_version": 1}).status_code == 403
    assert client_for(user).post("/map/rollback/", {"version": 1}).status_code == 403
    assert MapVersion.objects.count() == 1


def test_editor_save_and_stale_refusal_keep_the_draft(staff):
    c = client_for(staff)
    data = {f"assign-{cat}": e for cat, e in current_map().assignments.items()}
    assert c.post("/map/", {**data, "assign-math": "gemma-2-27b-it", "base_version": 1}).status_code == 302
    r = c.post("/map/", {**data, "assign-coding": "gemma-2-27b-it", "base_version": 1})
    assert r.status_code == 409 and b"out of date: the current version is 2" in r.content
    assert r.context["draft"]["coding"] == "gemma-2-27b-it"  # the user's draft is shown again, not lost
    assert current_map().assignments["coding"] == "qwen2-72b-instruct"


def test_history_diff(staff):
    from experts.services import publish_map

    publish_map(base_version=1, assignments={**current_map().assignments, "math": "gemma-2-9b-it"})
    page = client_for(staff).get("/map/history/?a=1&b=2")
    rows = page.context["diff"]
    assert [r for r in rows if r[3]] == [("math", "qwen2-72b-instruct", "gemma-2-9b-it", True)]
