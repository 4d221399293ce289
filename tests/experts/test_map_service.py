"""The map service: validation, optimistic concurrency, versions, audit, rollback, per-process cache."""
import pytest

from experts.models import AuditEntry, Expert, MapVersion
from experts.selectors import current_map
from experts.services import MapError, StaleMapVersion, publish_map, rollback_map
from experts.models import Category

pytestmark = pytest.mark.django_db


def default_assignments():
    return dict(current_map().assignments)


def test_default_map_is_version_1_with_general_on_a_large_model():
    snap = current_map()
    assert snap.version == 1 and set(snap.assignments) == set(Category.objects.values_list("name", flat=True))
    assert Expert.objects.get(name=snap.assignments["general"]).parameters > 70e9


def test_paper_pool_with_real_parameter_counts():
    counts = dict(Expert.objects.values_list("model_id", "parameters"))
    assert counts == {
        "Qwen/Qwen2-7B-Instruct": 7615616512, "google/gemma-2-9b-it": 9241705984,
        "google/gemma-2-27b-it": 27227128320, "meta-llama/Llama-3.1-70B-Instruct": 70553706496,
        "Qwen/Qwen2-72B-Instruct": 72706203648,
    }


def test_publish_creates_next_version_and_audit(user):
    new = {**default_assignments(), "math": "gemma-2-9b-it"}
    version = publish_map(base_version=1, assignments=new, note="cheaper math", user=user)
    assert version.number == 2 and current_map().assignments["math"] == "gemma-2-9b-it"
    entry = AuditEntry.objects.get(object_name="v2")
    assert (entry.actor, entry.action) == (user, "publish")
    assert entry.changes == {"note": "cheaper math", "assignments": {"math": ["qwen2-72b-instruct", "gemma-2-9b-it"]}}


def test_stale_base_is_refused():
    publish_map(base_version=1, assignments={**default_assignments(), "math": "gemma-2-9b-it"})
    with pytest.raises(StaleMapVersion, match="version 1 is out of date: the current version is 2"):
        publish_map(base_version=1, assignments={**default_assignments(), "coding": "gemma-2-9b-it"})
    assert MapVersion.objects.count() == 2


@pytest.mark.parametrize("change, message", [
    ({"poetry": "gemma-2-9b-it"}, "unknown category: poetry"),
    ({"math": "gpt-9"}, "unknown expert: gpt-9"),
    ({"general": None}, "unmapped category: general"),
    ({"math": "gemma-2-9b-it", "coding": None}, "unmapped category: coding"),
])
def test_invalid_maps_name_the_problem(change, message):
    new = {**default_assignments(), **change}
    new = {k: v for k, v in new.items() if v is not None}
    with pytest.raises(MapError, match=message):
        publish_map(base_version=1, assignments=new)
    assert MapVersion.objects.count() == 1


def test_disabled_expert_is_refused():
    Expert.objects.filter(name="gemma-2-9b-it").update(enabled=False)
    with pytest.raises(MapError, match="disabled expert: gemma-2-9b-it"):
        publish_map(base_version=1, assignments={**default_assignments(), "math": "gemma-2-9b-it"})


def test_rollback_creates_a_new_version_equal_to_the_old(user):
    original = default_assignments()
    publish_map(base_version=1, assignments={**original, "math": "gemma-2-9b-it"})
    version = rollback_map(version_number=1, user=user)
    assert version.number == 3 and version.rolled_back_from == 1
    assert current_map().assignments == original
    assert AuditEntry.objects.filter(action="rollback").count() == 1
    with pytest.raises(MapError, match="no map version 99"):
        rollback_map(version_number=99)


def test_snapshot_cache_follows_the_newest_version():
    first = current_map()
    assert current_map() is first  # unchanged version: cached object
    publish_map(base_version=1, assignments={**first.assignments, "roleplay": "qwen2-7b-instruct"})
    assert current_map().version == 2 and current_map().expert_for("roleplay")[0] == "qwen2-7b-instruct"
    assert current_map().expert_for("unmapped-category")[0] == first.assignments["general"]
