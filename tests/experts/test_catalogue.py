"""Categories and experts: add, rename, retire, disable — each audited, each map change a new version."""
import threading

import pytest
from django.db import connection

from experts.models import AuditEntry, Expert, MapVersion
from experts.selectors import current_map
from experts.services import MapError, StaleMapVersion, publish_map, save_expert
from experts import category_services
from experts.models import Category


@pytest.mark.django_db
def test_add_category_publishes_a_mapped_version(user):
    category_services.add_category(name="legal", expert="gemma-2-27b-it", base_version=1, description="Contracts and law",
                                   seed_prompts=["Review this NDA clause", "  ", "Review this NDA clause"], user=user)
    assert Category.objects.get(name="legal").seed_prompts == ["Review this NDA clause"]
    assert current_map().version == 2 and current_map().assignments["legal"] == "gemma-2-27b-it"
    assert AuditEntry.objects.filter(object_type="category", object_name="legal", action="create").exists()
    with pytest.raises(MapError, match="already exists"):
        category_services.add_category(name="legal", expert="gemma-2-27b-it", base_version=2)


@pytest.mark.django_db
def test_add_category_with_a_stale_base_changes_nothing():
    with pytest.raises(StaleMapVersion):
        category_services.add_category(name="legal", expert="gemma-2-27b-it", base_version=0)
    assert not Category.objects.filter(name="legal").exists()


@pytest.mark.django_db
def test_rename_keeps_the_mapping_and_is_audited(user):
    category_services.update_category(name="stem", user=user, new_name="science", seed_prompts=["Why is the sky blue?"])
    assert current_map().version == 1  # assignments point at the category row, not its name
    assert current_map().assignments.get("science") is None  # the cached snapshot is keyed by version
    entry = AuditEntry.objects.get(object_type="category", action="update")
    assert entry.changes["name"] == ["stem", "science"] and entry.changes["seed_prompts"][1] == 1
    with pytest.raises(MapError, match="cannot be renamed"):
        category_services.update_category(name="general", user=user, new_name="misc")


@pytest.mark.django_db
def test_retire_category(user):
    category_services.retire_category(name="extraction", base_version=1, user=user)
    assert Category.objects.get(name="extraction").retired
    assert "extraction" not in current_map().assignments and current_map().version == 2
    with pytest.raises(MapError, match="cannot be retired"):
        category_services.retire_category(name="general", base_version=2, user=user)


@pytest.mark.django_db
def test_expert_create_update_and_disable_rules(user):
    save_expert(name="mistral-7b", data={"model_id": "mistralai/Mistral-7B-Instruct-v0.3", "parameters": 7_248_023_552}, user=user)
    assert Expert.objects.get(name="mistral-7b").bytes_per_parameter == 2.0
    save_expert(name="mistral-7b", data={"enabled": False}, user=user)  # unused: may be disabled
    with pytest.raises(MapError, match="serves math, coding in the current map|serves coding, math"):
        save_expert(name="qwen2-72b-instruct", data={"enabled": False}, user=user)
    with pytest.raises(MapError, match="needs model_id and parameters"):
        save_expert(name="nameless", data={"enabled": True}, user=user)
    with pytest.raises(MapError, match="parameters must be a whole number from 1"):
        save_expert(name="mistral-7b", data={"parameters": -1}, user=user)
    actions = list(AuditEntry.objects.filter(object_type="expert").values_list("action", flat=True))
    assert sorted(actions) == ["create", "update"]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_editors_one_wins_one_is_told():
    """Both editors loaded v1 and save at the same moment: exactly one new version, the other gets a clear refusal."""
    base = dict(current_map().assignments)
    barrier = threading.Barrier(2)
    outcomes = []

    def editor(change):
        try:
            barrier.wait()
            version = publish_map(base_version=1, assignments={**base, **change}, note=str(change))
            outcomes.append(("saved", version.number))
        except StaleMapVersion as exc:
            outcomes.append(("refused", str(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=editor, args=({"math": "gemma-2-9b-it"},)),
               threading.Thread(target=editor, args=({"coding": "gemma-2-9b-it"},))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(o[0] for o in outcomes) == ["refused", "saved"], outcomes
    refused = next(o[1] for o in outcomes if o[0] == "refused")
    assert "Map version 1 is out of date: the current version is 2" in refused
    assert MapVersion.objects.count() == 2
