"""Retraining as durable background work: progress, activation only when it validates at least as well, override,
audit, one at a time, claims (a duplicate wake-up does nothing; a dead worker's training is taken over)."""
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from experts.models import AuditEntry
from routing import training
from experts.models import Category
from routing.models import RouterModel, RouterTraining


@pytest.fixture
def small_taxonomy(db, settings):
    """Trim every category to 12 seed prompts so a real auto-selected training run takes seconds; run jobs inline."""
    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, False  # jobs inline
    for category in Category.objects.all():
        category.seed_prompts = category.seed_prompts[:12]
        category.save()


def run(user, override=False):
    row = training.request_training(user=user, override=override)
    assert training.run_training(row.pk) == "done"
    return RouterTraining.objects.get(pk=row.pk).result


def test_first_training_activates_and_reports_progress(small_taxonomy, user, monkeypatch):
    events = []
    monkeypatch.setattr(training, "send_now", lambda group, event, data: events.append((group, event, data)))
    result = run(user)
    assert result["activated"] and result["previous_version"] is None
    row = RouterModel.objects.get(is_active=True)
    assert row.version == result["router_version"] and row.training_size == 9 * 12
    progress = [d for g, e, d in events if e == "router.training"]
    assert len(progress) == len(row.metrics["candidates"]) >= 3 and all(g == "map" for g, _, _ in events)
    assert [d["step"] for d in progress] == list(range(1, len(progress) + 1))
    assert AuditEntry.objects.get(object_type="router").actor == user
    stored = RouterTraining.objects.get()
    assert (stored.status, stored.active, len(stored.progress)) == ("done", False, len(progress))


def test_worse_router_stays_inactive_unless_overridden(small_taxonomy, user):
    first = run(user)
    RouterModel.objects.filter(version=first["router_version"]).update(
        metrics={"validation": {"accuracy": 1.01}})  # the active one now "validates" better than anything can
    second = run(user)
    assert not second["activated"] and RouterModel.objects.get(is_active=True).version == first["router_version"]
    third = run(user, override=True)
    assert third["activated"] and RouterModel.objects.get(is_active=True).version == third["router_version"]


def test_one_training_at_a_time_and_claims(db, user, settings):
    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, False  # jobs inline
    first = RouterTraining.objects.create(task_id="t-1")  # queued, as if its message were still on its way
    with pytest.raises(training.RetrainingBusy, match="t-1"):
        training.request_training(user=user)
    token = training.claim_training(first.pk)
    assert token and training.claim_training(first.pk) is None  # a duplicate wake-up finds it claimed
    RouterTraining.objects.filter(pk=first.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert training.claim_training(first.pk) not in (None, token)  # a dead worker's claim is taken over
    training.fail_training(first.pk, "boom")
    assert RouterTraining.objects.get(pk=first.pk).status == "failed"
    assert training.request_training(user=user).active  # the slot is free again


def test_reconciler_wakes_queued_and_stale_trainings(db, settings, monkeypatch):
    sent = []
    monkeypatch.setattr(training.jobs, "send", lambda name, *args, **kw: sent.append((name, args)))
    old = timezone.now() - timedelta(hours=1)
    queued = RouterTraining.objects.create(task_id="q")
    RouterTraining.objects.filter(pk=queued.pk).update(created_at=old)
    assert training.reconcile_trainings() == {"woken": 1} and sent == [("routing.retrain_router", (queued.pk,))]
    RouterTraining.objects.filter(pk=queued.pk).update(status="running", claimed_at=timezone.now())
    assert training.reconcile_trainings() == {"woken": 0}  # a live claim is left alone
    RouterTraining.objects.filter(pk=queued.pk).update(claimed_at=old)
    assert training.reconcile_trainings() == {"woken": 1}


def test_retrain_api_refuses_a_second_training_and_string_booleans(db, settings):
    from tests.conftest import make_user

    settings.COE_JOBS_IN_BACKGROUND = True  # the request must not wait for the training
    client = Client()
    client.force_login(make_user("ed", "Map editors"))
    post = lambda body: client.post("/api/router/retrain", json.dumps(body), content_type="application/json")  # noqa
    r = post({"override": "false"})
    assert r.status_code == 400 and "JSON boolean" in r.json()["error"]["message"]
    RouterTraining.objects.create(task_id="busy")
    r = post({"override": False})
    assert r.status_code == 409 and r.json()["error"]["task_id"] == "busy"
    assert RouterTraining.objects.count() == 1
    status = client.get("/api/router/retrain/busy").json()
    assert (status["state"], status["status"]) == ("PENDING", "queued")
    assert client.get("/api/router/retrain/nope").status_code == 404
