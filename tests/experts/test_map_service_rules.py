"""The map service's rules, one by one: which maps and splits are refused and what the message says, the stale-version
rule in both directions, what a version, its audit entry and its live event hold, rollback, which splits an edit keeps,
each expert setting's type and range, the backend checks, who may change how an expert is served, and when an expert
may be disabled. Written to kill mutants of experts/services.py (scripts/mutation.sh mapservice)."""
import contextlib
import json
import math
import time

import pytest

from coe_site.bus import get_bus
from experts import services
from experts.models import AuditEntry, Expert, MapAssignment, MapVersion
from experts.selectors import current_version_number, map_snapshot
from experts.services import (BackendsForbidden, MapError, StaleMapVersion, publish_map, rollback_map, save_expert)
from experts.models import Category

pytestmark = pytest.mark.django_db
DEFAULT = {"writing": "gemma-2-27b-it", "roleplay": "gemma-2-9b-it", "reasoning": "llama-3.1-70b-instruct",
           "math": "qwen2-72b-instruct", "coding": "qwen2-72b-instruct", "extraction": "qwen2-7b-instruct",
           "stem": "llama-3.1-70b-instruct", "humanities": "gemma-2-27b-it", "general": "llama-3.1-70b-instruct"}
CANARY = "gemma-2-9b-it"


def current():
    """The current version as stored (not the per-process snapshot cache, which keys on ids that rolled-back tests
    reuse)."""
    return map_snapshot(current_version_number())


def with_(**changes):
    return {**DEFAULT, **changes}


def refused(message, *args, **kwargs):
    """publish_map(*args) raises MapError with exactly ``message`` and stores no version."""
    with pytest.raises(MapError) as exc:
        publish_map(**dict(zip(("base_version", "assignments"), args)), **kwargs)
    assert str(exc.value) == message
    assert MapVersion.objects.count() == 1


@pytest.fixture
def events(django_capture_on_commit_callbacks):
    """``with events(n) as got:`` collects the live events the service publishes inside the block (they are sent once
    its transaction commits) as (topic, message), waiting up to 5 s for ``n`` of them (Redis delivers them a moment
    later)."""

    @contextlib.contextmanager
    def sent(expect):
        got = []
        with get_bus().recorder({"map", "dashboard"}) as drain:
            with django_capture_on_commit_callbacks(execute=True):
                yield got
            deadline = time.monotonic() + 5
            while len(got) < expect and time.monotonic() < deadline:
                got.extend((topic, json.loads(text)) for topic, text in drain(0.05))
            got.extend((topic, json.loads(text)) for topic, text in drain(0))

    return sent


def test_the_default_map_is_what_these_tests_assume():
    assert current().assignments == DEFAULT and current().version == 1


# -- what a map must be --------------------------------------------------------------------------------------

@pytest.mark.parametrize("assignments", [{}, None, ["general"], "general"])
def test_assignments_must_be_a_non_empty_object(assignments):
    refused("assignments must be a non-empty object of category → expert.", 1, assignments)


def test_every_problem_is_named_at_once_sorted_and_in_the_plural_when_several():
    Expert.objects.filter(name__in=["gemma-2-9b-it", "qwen2-7b-instruct"]).update(enabled=False)
    bad = {k: v for k, v in DEFAULT.items() if k not in ("stem", "coding")}
    bad.update(zeta="gemma-2-27b-it", alpha="gemma-2-27b-it", roleplay="gpt-9", writing="gpt-1",
               extraction="qwen2-7b-instruct", math="gemma-2-9b-it")
    refused("unknown categories: alpha, zeta; unknown experts: gpt-1, gpt-9; disabled experts: gemma-2-9b-it, "
            "qwen2-7b-instruct; unmapped categories: coding, stem.", 1, bad)


def test_one_problem_of_each_kind_is_named_in_the_singular():
    Expert.objects.filter(name="gemma-2-9b-it").update(enabled=False)
    bad = {k: v for k, v in DEFAULT.items() if k != "stem"}
    bad.update(zeta="gemma-2-27b-it", writing="gpt-1", roleplay="gemma-2-9b-it")
    refused("unknown category: zeta; unknown expert: gpt-1; disabled expert: gemma-2-9b-it; unmapped category: stem.",
            1, bad)


def test_an_expert_given_as_a_number_is_an_unknown_expert():
    refused("unknown expert: 7.", 1, with_(math=7))


def test_the_fallback_category_must_exist():
    Category.objects.filter(name="general").update(retired=True)
    refused("the 'general' category must always exist and be mapped.", 1,
            {k: v for k, v in DEFAULT.items() if k != "general"})
    refused("unknown category: general; the 'general' category must always exist and be mapped.", 1, DEFAULT)


def test_a_published_version_holds_exactly_the_assignments():
    version = publish_map(base_version=1, assignments=with_(math="gemma-2-9b-it"))
    rows = dict(MapAssignment.objects.filter(version=version).values_list("category__name", "expert__name"))
    assert rows == with_(math="gemma-2-9b-it")
    assert not MapAssignment.objects.filter(version=version, split_expert__isnull=False).exists()


# -- versions ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("base", [0, 2, 5])
def test_only_the_current_version_is_a_valid_base_behind_or_ahead(base):
    with pytest.raises(StaleMapVersion) as exc:
        publish_map(base_version=base, assignments=with_(math="gemma-2-9b-it"))
    assert (exc.value.base, exc.value.current) == (base, 1)
    assert str(exc.value) == (f"Map version {base} is out of date: the current version is 1. Reload, re-apply your "
                              f"change and save again.")
    assert MapVersion.objects.count() == 1


def test_the_first_map_is_published_on_base_zero_and_records_every_category_as_new():
    MapVersion.objects.all().delete()
    version = publish_map(base_version=0, assignments=DEFAULT, note="first")
    assert version.number == 1 and current().assignments == DEFAULT
    assert AuditEntry.objects.get(object_name="v1").changes == {
        "note": "first", "assignments": {c: [None, e] for c, e in sorted(DEFAULT.items())}}


def test_a_version_number_taken_meanwhile_is_a_stale_base_naming_the_new_current(monkeypatch):
    """Another editor publishes between this one's check and its insert: the unique number refuses the insert."""
    real = services.current_version_number
    publish_map(base_version=1, assignments=with_(math="gemma-2-9b-it"))  # the other editor's version 2
    answers = iter([1])  # this editor's check still sees version 1
    monkeypatch.setattr(services, "current_version_number", lambda: next(answers, None) or real())
    monkeypatch.setattr(services, "map_snapshot", lambda number: None)
    with pytest.raises(StaleMapVersion) as exc:
        publish_map(base_version=1, assignments=with_(coding="gemma-2-9b-it"))
    assert (exc.value.base, exc.value.current) == (1, 2)
    assert MapVersion.objects.count() == 2 and current().assignments == with_(math="gemma-2-9b-it")


def test_a_version_records_its_author_note_and_origin(user):
    version = publish_map(base_version=1, assignments=with_(math="gemma-2-9b-it"), note="x" * 600, user=user)
    assert (version.number, version.author, version.note, version.rolled_back_from) == (2, user, "x" * 500, None)
    version = publish_map(base_version=2, assignments=DEFAULT, note=None, user=object())  # no note, and an author that is not a saved user
    assert (version.number, version.author, version.note) == (3, None, "")


def test_publishing_audits_the_changed_categories_only(user):
    publish_map(base_version=1, assignments=with_(math="gemma-2-9b-it", coding="gemma-2-27b-it"), note="two changes", user=user)
    entry = AuditEntry.objects.get(object_name="v2")
    assert (entry.actor, entry.action, entry.object_type) == (user, "publish", "map")
    assert entry.changes == {"note": "two changes", "assignments": {
        "coding": ["qwen2-72b-instruct", "gemma-2-27b-it"], "math": ["qwen2-72b-instruct", "gemma-2-9b-it"]}}


def test_a_retired_category_is_audited_as_unmapped():
    Category.objects.filter(name="stem").update(retired=True)
    publish_map(base_version=1, assignments={k: v for k, v in DEFAULT.items() if k != "stem"}, note="retire stem")
    assert AuditEntry.objects.get(object_name="v2").changes == {
        "note": "retire stem", "assignments": {"stem": ["llama-3.1-70b-instruct", None]}}


def test_an_audit_without_a_saved_user_has_no_actor():
    publish_map(base_version=1, assignments=DEFAULT, note="", user=object())
    entry = AuditEntry.objects.get(object_name="v2")
    assert entry.actor is None and entry.changes == {"note": "", "assignments": {}}


def test_every_version_is_announced_on_the_map_and_dashboard_groups(events, user):
    with events(2) as got:
        publish_map(base_version=1, assignments=with_(math="gemma-2-9b-it"), note="cheaper", user=user,
                    splits={"coding": {"expert": CANARY, "share": 0.25}})
    event = {"event": "map.changed", "data": {
        "version": 2, "assignments": dict(sorted(with_(math="gemma-2-9b-it").items())),
        "splits": {"coding": {"expert": CANARY, "share": 0.25}}, "author": "operator", "note": "cheaper"}}
    assert sorted(topic for topic, _ in got) == ["dashboard", "map"]
    assert all(e == event for _, e in got)
    assert list(got[0][1]["data"]["assignments"]) == sorted(DEFAULT)


def test_an_event_without_an_author_says_none(events):
    with events(2) as got:
        publish_map(base_version=1, assignments=DEFAULT)
    assert [e["data"]["author"] for _, e in got] == [None, None]


# -- splits --------------------------------------------------------------------------------------------------

def test_a_split_is_stored_with_its_expert_and_share_as_a_float():
    version = publish_map(base_version=1, assignments=DEFAULT, splits={"math": {"expert": CANARY, "share": 0.25}})
    row = MapAssignment.objects.get(version=version, category__name="math")
    assert (row.expert.name, row.split_expert.name, row.split_share) == ("qwen2-72b-instruct", CANARY, 0.25)
    assert current().splits == {"math": {"expert": CANARY, "share": 0.25}}


@pytest.mark.parametrize("share", [1e-9, 0.5, 1 - 1e-9])
def test_any_share_strictly_between_0_and_1_is_a_split(share):
    publish_map(base_version=1, assignments=DEFAULT, splits={"math": {"expert": CANARY, "share": share}})
    assert current().splits["math"]["share"] == share


@pytest.mark.parametrize("share", [0, 0.0, 1, 1.0, -0.5, 1.5, True, False, None, "0.5", float("nan")])
def test_a_share_outside_0_to_1_or_not_a_number_is_refused(share):
    refused(f"split of math: share must be a fraction between 0 and 1 (exclusive), got {share!r}.", 1, DEFAULT,
            splits={"math": {"expert": CANARY, "share": share}})


@pytest.mark.parametrize("split, message", [
    ({"expert": CANARY}, 'split of math must be {"expert": name, "share": fraction}.'),
    ({"expert": CANARY, "share": 0.2, "extra": 1}, 'split of math must be {"expert": name, "share": fraction}.'),
    ([CANARY, 0.2], 'split of math must be {"expert": name, "share": fraction}.'),
    ({"expert": 7, "share": 0.2}, "split of math: unknown expert 7."),
    ({"expert": "nobody", "share": 0.2}, "split of math: unknown expert nobody."),
    ({"expert": "qwen2-72b-instruct", "share": 0.2}, "split of math: qwen2-72b-instruct already serves the whole "
                                                      "category."),
])
def test_a_bad_split_is_refused_naming_its_category(split, message):
    refused(message, 1, DEFAULT, splits={"math": split})


@pytest.mark.parametrize("splits", [[], "math", None.__class__])
def test_splits_must_be_an_object(splits):
    refused('splits must be an object of category → {"expert": name, "share": fraction}.', 1, DEFAULT, splits=splits)


def test_every_bad_split_is_named_at_once_in_category_order():
    Expert.objects.filter(name="qwen2-7b-instruct").update(enabled=False)
    publish_map(base_version=1, assignments=with_(extraction="gemma-2-27b-it"))
    refused_splits = {"stem": {"expert": CANARY, "share": 2}, "nowhere": {"expert": CANARY, "share": 0.1},
                      "coding": {"expert": "qwen2-7b-instruct", "share": 0.1}, "math": "half",
                      "writing": {"expert": CANARY, "share": 0.1}}
    with pytest.raises(MapError) as exc:
        publish_map(base_version=2, assignments=with_(extraction="gemma-2-27b-it"), splits=refused_splits)
    assert str(exc.value) == (
        'split of coding: disabled expert qwen2-7b-instruct; split of math must be {"expert": name, "share": '
        'fraction}; split of unmapped category nowhere; split of stem: share must be a fraction between 0 and 1 '
        '(exclusive), got 2.')
    assert MapVersion.objects.count() == 2


def test_an_edit_that_does_not_name_splits_keeps_those_that_still_apply():
    publish_map(base_version=1, assignments=DEFAULT, splits={"math": {"expert": CANARY, "share": 0.1},
                                    "stem": {"expert": CANARY, "share": 0.2},
                                    "coding": {"expert": "gemma-2-27b-it", "share": 0.3}})
    Category.objects.filter(name="stem").update(retired=True)
    publish_map(base_version=2, assignments={k: v for k, v in with_(coding="gemma-2-27b-it").items() if k != "stem"})
    assert current().splits == {"math": {"expert": CANARY, "share": 0.1}}  # stem retired, coding promoted
    entry = AuditEntry.objects.get(object_name="v3")
    assert entry.changes["splits"] == {"coding": [{"expert": "gemma-2-27b-it", "share": 0.3}, None],
                                       "stem": [{"expert": CANARY, "share": 0.2}, None]}


def test_kept_splits_are_those_whose_category_is_mapped_to_another_expert():
    before = {"math": {"expert": "a"}, "stem": {"expert": "b"}, "coding": {"expert": "c"}}
    assert services._kept_splits(before, {"math": "x", "coding": "c", "writing": "a"}) == {"math": {"expert": "a"}}


def test_splits_given_explicitly_replace_the_current_ones_and_are_audited():
    publish_map(base_version=1, assignments=DEFAULT, splits={"math": {"expert": CANARY, "share": 0.1}})
    publish_map(base_version=2, assignments=DEFAULT, splits={"math": {"expert": CANARY, "share": 0.2}, "stem": {"expert": CANARY, "share": 0.3}})
    assert current().splits == {"math": {"expert": CANARY, "share": 0.2}, "stem": {"expert": CANARY, "share": 0.3}}
    assert AuditEntry.objects.get(object_name="v3").changes == {"note": "", "assignments": {}, "splits": {
        "math": [{"expert": CANARY, "share": 0.1}, {"expert": CANARY, "share": 0.2}],
        "stem": [None, {"expert": CANARY, "share": 0.3}]}}


# -- rollback ------------------------------------------------------------------------------------------------

def test_rollback_publishes_the_old_assignments_and_splits_on_the_current_version(user, events):
    publish_map(base_version=1, assignments=DEFAULT, splits={"math": {"expert": CANARY, "share": 0.4}})
    publish_map(base_version=2, assignments=with_(coding="gemma-2-27b-it"), splits={})
    with events(2) as got:
        version = rollback_map(version_number=2, user=user)
    assert (version.number, version.rolled_back_from, version.note, version.author) == (4, 2, "rollback to v2", user)
    assert current().assignments == DEFAULT and current().splits == {"math": {"expert": CANARY, "share": 0.4}}
    entry = AuditEntry.objects.get(object_name="v4")
    assert (entry.action, entry.actor) == ("rollback", user)
    assert entry.changes["assignments"] == {"coding": ["gemma-2-27b-it", "qwen2-72b-instruct"]}
    assert [e["data"]["note"] for _, e in got] == ["rollback to v2"] * 2


def test_rollback_keeps_a_note_given_and_checks_a_base_given():
    publish_map(base_version=1, assignments=with_(math=CANARY))
    assert rollback_map(version_number=1, note="undo", base_version=2).note == "undo"
    with pytest.raises(StaleMapVersion) as exc:
        rollback_map(version_number=1, base_version=2)
    assert (exc.value.base, exc.value.current) == (2, 3)


def test_rollback_to_a_missing_version_is_refused():
    with pytest.raises(MapError, match=r"^no map version 7\.$"):
        rollback_map(version_number=7)


# -- expert settings -----------------------------------------------------------------------------------------

NEW = {"model_id": "example/spare-7b", "parameters": 7_000_000_000}


def new_expert(name="spare-7b", **data):
    return save_expert(name=name, data={**NEW, **data})


@pytest.mark.parametrize("field, low, high, whole, low_text, high_text", [
    ("parameters", 1, 10**15, True, "1", "1e+15"), ("active_parameters", 1, 10**15, True, "1", "1e+15"),
    ("bytes_per_parameter", 0.125, 8, False, "0.125", "8"), ("context_length", 1, 10**8, True, "1", "1e+08"),
    ("timeout_s", 0.001, 86_400, False, "0.001", "86400"), ("connect_timeout_s", 0.001, 3600, False, "0.001", "3600"),
    ("first_token_timeout_s", 0.001, 86_400, False, "0.001", "86400"), ("max_retries", 0, 10, True, "0", "10"),
    ("sim_time_scale", 0, 1000, False, "0", "1000"),
])
def test_each_number_is_accepted_at_its_bounds_and_refused_past_them(field, low, high, whole, low_text, high_text):
    for value in (low, high):
        assert getattr(new_expert(**{field: value}), field) == value
    kind = "a whole number" if whole else "a number"
    past = [low - 1, high + 1] if whole else [low - low / 1000 - 1e-9, high * 1.001]
    for value in past + ["5", True, math.nan, math.inf] + ([2.5] if whole else []):
        with pytest.raises(MapError) as exc:
            new_expert(**{field: value})
        assert str(exc.value) == f"{field} must be {kind} from {low_text} to {high_text}, not {value!r}."
    assert not Expert.objects.filter(name="spare-7b").exclude(**{field: high}).exists()


def test_a_number_field_takes_whole_numbers_too_and_active_parameters_may_be_blank():
    assert new_expert(bytes_per_parameter=2, active_parameters=None).bytes_per_parameter == 2
    assert Expert.objects.get(name="spare-7b").active_parameters is None


@pytest.mark.parametrize("field", ["model_id", "description", "backend", "base_url", "upstream_model",
                                   "api_key_env", "model_path", "device", "sim_preset"])
def test_text_settings_must_be_text(field):
    with pytest.raises(MapError) as exc:
        new_expert(**{field: 5})
    assert str(exc.value) == f"{field} must be text, not int."


@pytest.mark.parametrize("value", [1, "yes", None])
def test_enabled_must_be_true_or_false(value):
    with pytest.raises(MapError, match=r"^enabled must be true or false\.$"):
        new_expert(enabled=value)


def test_unknown_fields_are_ignored():
    expert = new_expert(colour="red")
    assert not hasattr(expert, "colour") and AuditEntry.objects.get(object_name="spare-7b").changes == {
        "model_id": [None, "example/spare-7b"], "parameters": [None, 7_000_000_000]}


@pytest.mark.parametrize("generation, message", [
    (["max_tokens"], 'generation must be a JSON object, e.g. {"max_new_tokens": 256}.'),
    ({"colour": 1}, "unknown generation setting: colour (known: do_sample, frequency_penalty, max_new_tokens, "
                    "max_tokens, min_p, presence_penalty, repetition_penalty, seed, stop, temperature, top_k, top_p)."),
    ({"colour": 1, "age": 2, "top_p": 0.5}, "unknown generation settings: age, colour (known: do_sample, "
                                            "frequency_penalty, max_new_tokens, max_tokens, min_p, presence_penalty, "
                                            "repetition_penalty, seed, stop, temperature, top_k, top_p)."),
    ({"top_p": "high", "temperature": math.nan, "seed": 1}, "generation settings must be finite numbers (stop: text "
                                                            "or a list of texts): temperature, top_p."),
    ({"stop": 5}, "generation settings must be finite numbers (stop: text or a list of texts): stop."),
    ({"stop": {"a": 1}, "seed": math.inf}, "generation settings must be finite numbers (stop: text or a list of "
                                           "texts): seed."),
])
def test_generation_settings_are_known_keys_with_finite_numbers(generation, message, backend_admin):
    with pytest.raises(MapError) as exc:
        new_expert(generation=generation)
    assert str(exc.value) == message


@pytest.mark.parametrize("generation", [{"stop": "END", "do_sample": True, "max_new_tokens": 256},
                                        {"stop": ["a", "b"], "temperature": 0.5}, {}])
def test_valid_generation_settings_are_kept(generation):
    assert new_expert(generation=generation).generation == generation


def test_model_validation_names_each_field_in_one_message():
    with pytest.raises(MapError) as exc:
        save_expert(name="bad name!", data={**NEW, "model_id": "m" * 201})
    assert str(exc.value) == ("name: Letters, digits, dots, hyphens and underscores, e.g. llama-3.1-70b.; model_id: "
                              "Ensure this value has at most 200 characters (it has 201).")
    assert not Expert.objects.filter(model_id="m" * 201).exists()


def test_model_validation_joins_a_fields_messages_with_spaces():
    with pytest.raises(MapError) as exc:
        services.clean(Expert(name="", model_id="m", parameters=1))
    assert str(exc.value) == "name: This field cannot be blank."
    with pytest.raises(MapError) as exc:
        save_expert(name="!" * 81, data=NEW)
    assert str(exc.value) == ("name: Letters, digits, dots, hyphens and underscores, e.g. llama-3.1-70b. Ensure this "
                              "value has at most 80 characters (it has 81).")


# -- backends ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ({"backend": "openai"}, "an openai backend needs base_url (e.g. http://vllm:8000/v1)."),
    ({"backend": "openai", "base_url": "http://elsewhere:8000/v1"},
     "base_url host elsewhere:8000 is not allowed: add it to COE_UPSTREAM_ALLOWED_HOSTS (names, *.wildcards or "
     "networks such as 10.0.0.0/8)."),
    ({"backend": "simulated", "base_url": "http://elsewhere/v1"},
     "base_url host elsewhere is not allowed: add it to COE_UPSTREAM_ALLOWED_HOSTS (names, *.wildcards or networks "
     "such as 10.0.0.0/8)."),
    ({"backend": "simulated", "api_key_env": "HOME"},
     "api_key_env HOME is not an allowed key variable (names starting with COE_KEY_, or listed in COE_API_KEY_ENVS): "
     "only variables meant for upstream keys may be sent to an expert."),
    ({"backend": "transformers"}, "a transformers backend needs model_path: a local model directory."),
    ({"backend": "simulated", "sim_preset": "cray-1"}, None),
])
def test_a_backend_is_checked_before_it_is_saved(data, message, upstreams):
    if message is None:
        from hwsim.engine.presets import PRESETS

        message = f"unknown sim_preset 'cray-1'; presets: {', '.join(PRESETS)}."
    with pytest.raises(MapError) as exc:
        new_expert(**data)
    assert str(exc.value) == message
    assert not Expert.objects.filter(name="spare-7b").exists()


@pytest.mark.parametrize("data", [
    {"backend": "openai", "base_url": "http://vllm:8000/v1", "api_key_env": "COE_KEY_VLLM"},
    {"backend": "transformers", "model_path": "/models/spare"},
    {"backend": "simulated", "sim_preset": "dgx-h100"},
])
def test_a_complete_backend_is_saved(data, upstreams):
    expert = new_expert(**data)
    assert {k: getattr(Expert.objects.get(pk=expert.pk), k) for k in data} == data


def test_changing_how_an_expert_is_served_needs_the_backend_permission(editor, backend_admin, upstreams):
    with pytest.raises(BackendsForbidden) as exc:
        save_expert(name="gemma-2-9b-it", data={"timeout_s": 5.0, "backend": "openai", "base_url": "http://vllm:8000/v1",
                                      "description": "d"}, user=editor)
    assert str(exc.value) == ("changing backend, base_url, timeout_s needs the expert-backend permission "
                              "(access.edit_backends): ask a backend administrator.")
    assert Expert.objects.get(name="gemma-2-9b-it").timeout_s == 60.0
    expert = save_expert(name="gemma-2-9b-it", data={"timeout_s": 5.0, "description": "d"}, user=backend_admin)
    assert (expert.timeout_s, expert.description) == (5.0, "d")
    save_expert(name="gemma-2-9b-it", data={"timeout_s": 7.0})  # the system (no user) may
    assert Expert.objects.get(name="gemma-2-9b-it").timeout_s == 7.0


def test_an_editor_may_resend_unchanged_backend_settings_with_a_map_edit(editor):
    expert = save_expert(name="gemma-2-9b-it", data={"backend": "simulated", "timeout_s": 60.0, "description": "cheap"}, user=editor)
    assert expert.description == "cheap"


@pytest.mark.parametrize("field, value", [("max_retries", 3), ("generation", {"seed": 1}), ("device", "cuda"),
                                          ("sim_preset", "dgx-h100"), ("sim_time_scale", 0.5),
                                          ("connect_timeout_s", 1.0), ("first_token_timeout_s", 1.0),
                                          ("model_path", "/m"), ("upstream_model", "u"), ("api_key_env", "COE_KEY_A")])
def test_every_backend_setting_is_the_backend_administrators(field, value, editor, upstreams):
    with pytest.raises(BackendsForbidden, match=f"^changing {field} needs"):
        save_expert(name="gemma-2-9b-it", data={field: value}, user=editor)


# -- saving experts ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [{"model_id": "m"}, {"parameters": 7}, {}])
def test_a_new_expert_needs_its_model_id_and_parameters(data):
    with pytest.raises(MapError, match=r"^a new expert needs model_id and parameters\.$"):
        save_expert(name="spare-7b", data=data)


def test_creating_and_updating_an_expert_are_audited_with_the_changes_and_announced(user, events):
    with events(2) as got:
        save_expert(name="spare-7b", data={**NEW, "description": "a spare"}, user=user)
        save_expert(name="spare-7b", data={"description": "a spare", "context_length": 4096}, user=user)
    create, update = AuditEntry.objects.filter(object_type="expert").order_by("id")
    assert (create.action, create.actor, create.object_name) == ("create", user, "spare-7b")
    assert create.changes == {"model_id": [None, "example/spare-7b"], "parameters": [None, 7_000_000_000],
                              "description": [None, "a spare"]}
    assert (update.action, update.changes) == ("update", {"context_length": [8192, 4096]})
    assert got == [
        ("map", {"event": "expert.changed", "data": {"name": "spare-7b", "changes": create.changes}}),
        ("map", {"event": "expert.changed", "data": {"name": "spare-7b", "changes": update.changes}})]
    assert Expert.objects.get(name="spare-7b").context_length == 4096


def test_an_expert_the_current_map_uses_cannot_be_disabled():
    publish_map(base_version=1, assignments=DEFAULT, splits={"stem": {"expert": "qwen2-7b-instruct", "share": 0.2}})
    with pytest.raises(MapError) as exc:
        save_expert(name="qwen2-7b-instruct", data={"enabled": False})
    assert str(exc.value) == ("expert qwen2-7b-instruct serves extraction, stem in the current map: map those "
                              "categories to another expert first.")
    assert Expert.objects.get(name="qwen2-7b-instruct").enabled


def test_an_expert_only_an_older_version_used_can_be_disabled_and_a_new_one_can_start_disabled():
    publish_map(base_version=1, assignments=with_(extraction="gemma-2-27b-it"))
    assert save_expert(name="qwen2-7b-instruct", data={"enabled": False}).enabled is False
    assert new_expert(enabled=False).enabled is False
    assert save_expert(name="gemma-2-27b-it", data={"enabled": True}).enabled is True  # enabling is never refused
