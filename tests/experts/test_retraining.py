"""Retraining as a Celery task: progress, activation only when it validates at least as well, override, audit."""
import pytest

from experts.models import AuditEntry
from experts.tasks import retrain_router
from routing.models import Category, RouterModel


@pytest.fixture
def small_taxonomy(db):
    """Trim every category to 12 seed prompts so a real auto-selected training run takes seconds."""
    for category in Category.objects.all():
        category.seed_prompts = category.seed_prompts[:12]
        category.save()


def run(user, override=False):
    return retrain_router.apply(args=(user.pk, override)).get()


def test_first_training_activates_and_reports_progress(small_taxonomy, user):
    events = []
    import experts.tasks as tasks

    original = tasks.send_now
    tasks.send_now = lambda group, event, data: events.append((group, event, data))
    try:
        result = run(user)
    finally:
        tasks.send_now = original
    assert result["activated"] and result["previous_version"] is None
    row = RouterModel.objects.get(is_active=True)
    assert row.version == result["router_version"] and row.training_size == 9 * 12
    progress = [d for g, e, d in events if e == "router.training"]
    assert len(progress) == len(row.metrics["candidates"]) >= 3 and all(g == "map" for g, _, _ in events)
    assert events[-1][1] == "router.trained"
    assert AuditEntry.objects.get(object_type="router").actor == user


def test_worse_router_stays_inactive_unless_overridden(small_taxonomy, user):
    first = run(user)
    RouterModel.objects.filter(version=first["router_version"]).update(
        metrics={"validation": {"accuracy": 1.01}})  # the active one now "validates" better than anything can
    second = run(user)
    assert not second["activated"] and RouterModel.objects.get(is_active=True).version == first["router_version"]
    third = run(user, override=True)
    assert third["activated"] and RouterModel.objects.get(is_active=True).version == third["router_version"]
