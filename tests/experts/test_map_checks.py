"""The map service's checks (check_map, check_expert, clean_splits, splits_from_percent): they say what publishing or
saving would refuse, with the same messages, and change nothing — no map version, assignment, audit entry, expert
change or live event — whether they pass or fail."""
import pytest

from experts import services
from experts.models import AuditEntry, Category, Expert, MapAssignment, MapVersion
from experts.selectors import current_map
from experts.services import (BackendsForbidden, MapError, StaleMapVersion, check_expert, check_map, clean_splits,
                              publish_map, splits_from_percent)

pytestmark = pytest.mark.django_db
CANARY = "gemma-2-9b-it"


def state():
    """Everything a map or expert write would change."""
    return (list(MapVersion.objects.values_list("number", "note", "author_id", "rolled_back_from")),
            list(MapAssignment.objects.order_by("pk").values_list("version_id", "category_id", "expert_id",
                                                                  "split_expert_id", "split_share")),
            list(AuditEntry.objects.values_list("pk", flat=True)),
            list(Expert.objects.order_by("pk").values()),
            list(Category.objects.order_by("pk").values()))


@pytest.fixture
def unchanged(django_capture_on_commit_callbacks):
    """``with unchanged():`` fails if the block writes to the map, the experts or the audit, or queues a live event."""
    import contextlib

    @contextlib.contextmanager
    def block():
        before = state()
        with django_capture_on_commit_callbacks() as callbacks:
            yield
        assert state() == before
        assert callbacks == []
    return block


def assignments(**changes):
    return {**current_map().assignments, **changes}


def test_a_passing_map_check_returns_the_cleaned_change_and_writes_nothing(unchanged):
    with unchanged():
        checked = check_map(base_version=1, assignments=assignments(math=CANARY),
                            splits={"coding": {"expert": CANARY, "share": 1 / 4}})
    assert checked.previous.version == 1
    assert [(c.name, e.name) for c, e in checked.pairs if c.name == "math"] == [("math", CANARY)]
    assert checked.splits == {"coding": {"expert": CANARY, "share": 0.25}}
    assert checked.split_of["coding"]["split_expert"].name == CANARY
    # what passed the check publishes as checked
    version = publish_map(base_version=1, assignments=assignments(math=CANARY),
                          splits={"coding": {"expert": CANARY, "share": 1 / 4}})
    assert version.number == 2 and current_map().splits == checked.splits


def test_a_map_check_without_splits_keeps_those_that_still_apply(unchanged):
    publish_map(base_version=1, assignments=assignments(), splits={"math": {"expert": CANARY, "share": 0.1},
                                                                   "coding": {"expert": "gemma-2-27b-it", "share": 0.2}})
    with unchanged():
        checked = check_map(base_version=2, assignments=assignments(coding="gemma-2-27b-it"))
    assert checked.splits == {"math": {"expert": CANARY, "share": 0.1}}


@pytest.mark.parametrize("change, splits, error", [
    ({"math": "gpt-1"}, None, MapError),
    ({}, {"math": {"expert": CANARY, "share": 2}}, MapError),
    ({}, {"math": "half"}, MapError),
    ({}, [], MapError),
])
def test_a_failing_map_check_writes_nothing_and_says_what_publishing_says(unchanged, change, splits, error):
    with unchanged():
        with pytest.raises(error) as checked:
            check_map(base_version=1, assignments=assignments(**change), splits=splits)
        with pytest.raises(error) as published:
            publish_map(base_version=1, assignments=assignments(**change), splits=splits)
    assert str(checked.value) == str(published.value)


def test_a_stale_base_is_refused_by_the_check(unchanged):
    publish_map(base_version=1, assignments=assignments(math=CANARY))
    with unchanged():
        with pytest.raises(StaleMapVersion) as exc:
            check_map(base_version=1, assignments=assignments())
    assert (exc.value.base, exc.value.current) == (1, 2)


def test_the_assignments_are_checked_before_the_base_and_the_base_before_the_splits(unchanged):
    publish_map(base_version=1, assignments=assignments())
    with unchanged():
        with pytest.raises(MapError):
            check_map(base_version=1, assignments=assignments(math="gpt-1"))
        with pytest.raises(StaleMapVersion):
            check_map(base_version=1, assignments=assignments(), splits={"math": "half"})


def test_a_passing_expert_check_sets_nothing_in_the_database(unchanged, backend_admin, upstreams):
    stored = Expert.objects.get(name=CANARY)
    with unchanged():
        checked = check_expert(name=CANARY, data={"description": "checked", "backend": "openai",
                                                  "base_url": "http://vllm:8000/v1"}, user=backend_admin)
        new = check_expert(name="spare-7b", data={"model_id": "example/spare-7b", "parameters": 7_000_000_000})
    assert checked.expert.description == "checked" and checked.before["description"] == stored.description
    assert checked.expert.pk == stored.pk and checked.values["backend"] == "openai"
    assert new.expert.pk is None and new.before == {}
    assert Expert.objects.get(name=CANARY).description == stored.description
    assert not Expert.objects.filter(name="spare-7b").exists()


@pytest.mark.parametrize("name, data, error, message", [
    (CANARY, {"backend": "openai"}, MapError, "an openai backend needs base_url"),
    (CANARY, {"parameters": -1}, MapError, "parameters must be a whole number"),
    ("qwen2-72b-instruct", {"enabled": False}, MapError, "in the current map"),
    ("nameless", {"enabled": True}, MapError, "a new expert needs model_id and parameters."),
])
def test_a_failing_expert_check_writes_nothing_and_says_what_saving_says(unchanged, name, data, error, message):
    with unchanged():
        with pytest.raises(error, match=message) as checked:
            check_expert(name=name, data=data)
        with pytest.raises(error) as saved:
            services.save_expert(name=name, data=data)
    assert str(checked.value) == str(saved.value)


def test_the_expert_check_holds_the_backend_permission_rule(unchanged, editor):
    with unchanged():
        with pytest.raises(BackendsForbidden, match="needs the expert-backend permission"):
            check_expert(name=CANARY, data={"timeout_s": 5.0}, user=editor)
        assert check_expert(name=CANARY, data={"description": "fine"}, user=editor).values == {"description": "fine"}
        assert check_expert(name=CANARY, data={"timeout_s": 5.0}).values == {"timeout_s": 5.0}  # the system may


def test_clean_splits_alone_checks_shape_and_share_only():
    """The impact preview's use: experts and categories are not looked up."""
    assert clean_splits({"b": {"expert": "nobody", "share": 0.1}, "a": {"expert": "x", "share": 1 / 2}}) == {
        "a": {"expert": "x", "share": 0.5}, "b": {"expert": "nobody", "share": 0.1}}
    with pytest.raises(MapError) as exc:
        clean_splits({"math": {"expert": "x", "share": 7}, "coding": "half", "stem": {"expert": 3, "share": 0.1}})
    assert str(exc.value) == ('split of coding must be {"expert": name, "share": fraction}; split of math: share must '
                              'be a fraction between 0 and 1 (exclusive), got 7; split of stem: unknown expert 3.')
    with pytest.raises(MapError, match=r"^splits must be an object"):
        clean_splits(["math"])


def test_splits_from_percent():
    rows = [("math", CANARY, " 12.5 "), ("coding", "", "40"), ("stem", CANARY, 50.0)]
    assert splits_from_percent(rows) == {"math": {"expert": CANARY, "share": 0.125},
                                         "stem": {"expert": CANARY, "share": 0.5}}
    with pytest.raises(MapError, match=r"^split of math: give the share sent to x in percent \(0-100\), not 'lots'\.$"):
        splits_from_percent([("math", "x", " lots ")])
