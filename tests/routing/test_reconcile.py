"""The reconciler and `requeue_batches`: pending work gets a worker whatever became of its message; chunks that keep
failing fail with the reason; a batch always ends done or failed; its page says what is pending and why."""
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from routing import services
from routing.engine.inputs import Item
from routing.models import Batch, BatchChunk, RoutingDecision

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch, settings):
    """Wake-ups the reconciler sends (not run: each test decides what a worker does)."""
    settings.COE_CHUNK_MAX_ATTEMPTS = 3
    calls = []
    monkeypatch.setattr(services.jobs, "send", lambda name, *args, **kw: calls.append((name, args)))
    return calls


def batch_of(user, n=6, size=2, settings=None):
    settings.COE_BATCH_CHUNK_SIZE = size
    return services.create_batch(items=[Item(i + 1, f"Solve {i} + {i} step by step.") for i in range(n)], name="b",
                                 user=user)


def test_lost_wake_ups_are_sent_again_after_the_idle_time(sent, user, settings):
    batch = batch_of(user, settings=settings)  # on_commit never runs here: as if every message were lost
    assert services.reconcile_batches() == {"woken": 0, "gave_up": 0, "finished": 0}  # queued just now
    later = timezone.now() + timedelta(seconds=settings.COE_RECONCILE_IDLE_S + 1)
    report = services.reconcile_batches(now=later)
    assert report["woken"] == 3 and {a for _, a in sent} == {(c.pk,) for c in batch.chunks.all()}
    assert all(name == "routing.route_chunk" for name, _ in sent)
    sent.clear()
    assert services.reconcile_batches(now=later)["woken"] == 0  # not again until another idle time has passed


def test_stale_claims_are_sent_again_and_live_ones_left_alone(sent, user, settings):
    batch = batch_of(user, settings=settings)
    first, second = batch.chunks.order_by("index")[:2]
    services.claim_chunk(first.pk)
    services.claim_chunk(second.pk)
    BatchChunk.objects.filter(pk=first.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    report = services.reconcile_batches(idle_s=0)
    assert {a[0] for _, a in sent} == {first.pk, batch.chunks.order_by("index")[2].pk}
    assert report["woken"] == 2


def test_chunks_that_use_up_their_attempts_fail_with_the_reason_and_the_batch_ends(sent, user, settings):
    batch = batch_of(user, n=4, settings=settings)
    one, two = batch.chunks.order_by("index")
    BatchChunk.objects.filter(pk=one.pk).update(attempts=3, last_error="retrying after OperationalError")
    BatchChunk.objects.filter(pk=two.pk).update(status="done")
    report = services.reconcile_batches(idle_s=0)
    assert report["gave_up"] == 1 and report["finished"] == 1
    batch.refresh_from_db()
    assert batch.status == "failed" and batch.finished_at is not None
    assert [e["line"] for e in batch.errors] == [1, 2]
    assert "gave up after 3 attempts (retrying after OperationalError)" in batch.errors[0]["message"]


def test_requeue_batches_command_and_retrying_failed_chunks(user, settings, active_router):
    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, False  # jobs inline
    batch = batch_of(user, n=4, settings=settings)
    one, two = batch.chunks.order_by("index")
    BatchChunk.objects.filter(pk=one.pk).update(status="failed")
    Batch.objects.filter(pk=batch.pk).update(errors=[{"line": 1, "message": "x"}, {"line": 2, "message": "x"}])
    out = StringIO()
    call_command("requeue_batches", "--batch", str(batch.pk), stdout=out)  # runs chunk two inline
    assert json.loads(out.getvalue())["woken"] == 1
    batch.refresh_from_db()
    assert batch.status == "failed" and RoutingDecision.objects.filter(batch=batch).count() == 2
    out = StringIO()
    call_command("requeue_batches", "--batch", str(batch.pk), "--retry-failed", stdout=out)
    assert json.loads(out.getvalue())["retried_failed_chunks"] == 1
    batch.refresh_from_db()
    assert (batch.status, batch.errors, RoutingDecision.objects.filter(batch=batch).count()) == ("done", [], 4)
    with pytest.raises(CommandError, match="No batch #999"):
        call_command("requeue_batches", "--batch", "999")


def test_the_batch_page_says_what_is_pending_and_why(user, settings):
    batch = batch_of(user, settings=settings)
    BatchChunk.objects.filter(batch=batch, index=0).update(last_error="retrying after OperationalError")
    client = Client()
    client.force_login(user)
    page = client.get(f"/batches/{batch.pk}/").content.decode()
    assert "3 pending" in page and "Waiting: retrying after OperationalError" in page
    assert client.get(f"/api/batches/{batch.pk}").json()["pending"] == {
        "chunks": {"pending": 3}, "most_attempts": 0, "reason": "retrying after OperationalError"}
