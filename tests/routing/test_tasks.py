"""Chunk claiming and routing: stale claims are taken over, a lost claim writes nothing, failures name lines,
embedded mode routes in a background thread. The real-worker kill test is in test_tasks_worker_kill.py."""
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from routing import services
from routing.models import Batch, BatchChunk, RoutingDecision
from routing.engine.inputs import Item

PROMPTS = ["What is 12 * 12?", "Write a poem about the moon.", "Explain a Python list comprehension.",
           "Who was Napoleon?", "Name three prime numbers."]


def make_batch(n=5, chunk_size=5, settings=None):
    settings.COE_BATCH_CHUNK_SIZE = chunk_size
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.COE_JOBS_IN_BACKGROUND = False
    return services.create_batch(items=[Item(i + 1, PROMPTS[i % len(PROMPTS)]) for i in range(n)], name="t")


def test_a_stale_claim_is_taken_over_and_the_old_worker_writes_nothing(db, active_router, settings):
    batch = make_batch(settings=settings)  # on_commit never fires inside the test transaction: nothing runs yet
    chunk = batch.chunks.get()
    old = services.claim_chunk(chunk.pk)
    assert old and services.claim_chunk(chunk.pk) is None  # a live claim is respected
    BatchChunk.objects.filter(pk=chunk.pk).update(claimed_at=timezone.now() - timedelta(seconds=300))
    new = services.claim_chunk(chunk.pk)
    assert new and new != old
    assert services.route_claimed_chunk(chunk.pk, new) == "done"
    assert services.route_claimed_chunk(chunk.pk, old) == "lost"  # the "dead" worker wakes up too late
    assert services.process_chunk(chunk.pk) == "skipped"
    assert RoutingDecision.objects.filter(batch=batch).count() == 5
    batch.refresh_from_db()
    chunk.refresh_from_db()
    assert (batch.status, batch.done, chunk.attempts) == ("done", 5, 2)


def test_the_old_worker_finishing_first_wins_and_the_new_one_writes_nothing(db, active_router, settings):
    batch = make_batch(settings=settings)
    chunk = batch.chunks.get()
    old = services.claim_chunk(chunk.pk)
    assert services.route_claimed_chunk(chunk.pk, old) == "done"
    BatchChunk.objects.filter(pk=chunk.pk).update(claimed_at=timezone.now() - timedelta(seconds=300))
    assert services.claim_chunk(chunk.pk) is None  # done chunks are never re-claimed, however old
    assert RoutingDecision.objects.filter(batch=batch).count() == 5


def test_routing_failure_fails_the_batch_and_names_the_lines(db, settings, active_router):
    from routing.models import RouterModel

    batch = make_batch(n=7, chunk_size=4, settings=settings)
    first, second = batch.chunks.order_by("index")
    assert services.process_chunk(first.pk) == "done"
    RouterModel.objects.update(is_active=False)
    assert services.process_chunk(second.pk) == "failed"
    batch.refresh_from_db()
    assert (batch.status, batch.done) == ("failed", 4)
    assert [e["line"] for e in batch.errors] == [5, 6, 7]
    assert batch.errors[0]["message"].startswith("routing failed: No active router")


@pytest.mark.django_db(transaction=True)
def test_embedded_upload_returns_at_once_and_routes_in_a_background_thread(client, user, active_router, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.COE_JOBS_IN_BACKGROUND = True
    settings.COE_BATCH_CHUNK_SIZE = 50
    client.force_login(user)
    prompts = [f"{p} (variant {i})" for i in range(60) for p in PROMPTS]  # 300 prompts, 6 chunks
    started = time.monotonic()
    r = client.post("/api/batches", {"prompts": prompts}, content_type="application/json")
    assert r.status_code == 200
    batch_id = r.json()["id"]
    first = client.get(f"/api/batches/{batch_id}").json()
    assert first["status"] in ("queued", "running") and first["done"] < 300  # the request did not wait
    while time.monotonic() - started < 120:
        status = client.get(f"/api/batches/{batch_id}").json()
        if status["status"] == "done":
            break
        time.sleep(0.2)
    assert (status["status"], status["done"]) == ("done", 300)
    lines = RoutingDecision.objects.filter(batch_id=batch_id).values_list("line", flat=True)
    assert sorted(lines) == list(range(1, 301))
    Batch.objects.filter(pk=batch_id).delete()
