"""A real Celery worker is SIGKILLed mid-batch and another started: every prompt ends with exactly one decision.

Needs PostgreSQL and Redis (the workers are separate processes that must share the test database and a broker):
skipped in embedded mode, runs in CI's distributed pass.
"""
import os
import signal
import uuid

import pytest
from django.db import connection

from routing.engine.inputs import Item
from routing.models import Batch, BatchChunk, RoutingDecision

from ..workers import start_worker, wait_for

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"),
                       reason="needs REDIS_URL and DATABASE_URL (PostgreSQL): runs in the distributed pass"),
    pytest.mark.django_db(transaction=True),
]


def test_killed_worker_loses_nothing_and_duplicates_nothing(active_router, settings):
    from routing.services import create_batch, reconcile_batches

    queue = f"test-kill-{uuid.uuid4().hex[:8]}"
    settings.COE_BATCH_QUEUE = queue
    settings.COE_BATCH_CHUNK_SIZE = 40
    settings.COE_CHUNK_STALE_S = 4  # as the workers' (tests/workers.py)
    total = 800
    items = [Item(i + 1, f"Question {i}: what is {i} plus {i * 7}? Explain step by step.") for i in range(total)]
    batch = create_batch(items=items, name="kill test")  # autocommit: the 20 chunk tasks go to Redis now
    first = start_worker(queue, "first")
    second = None
    try:
        wait_for(lambda: Batch.objects.get(pk=batch.pk).done >= 120, 120, "the first worker to route 120 prompts")
        wait_for(lambda: BatchChunk.objects.filter(batch=batch, status="claimed").exists(), 30, "a claimed chunk")
        os.killpg(first.pid, signal.SIGKILL)  # mid-chunk: its claim and its unacked message die with it
        first.wait(10)
        held = list(BatchChunk.objects.filter(batch=batch, status="claimed").values_list("pk", flat=True))
        assert Batch.objects.get(pk=batch.pk).done < total
        second = start_worker(queue, "second")
        # the reconciler (Celery beat in production) wakes a worker for the dead one's stale claim
        wait_for(lambda: (reconcile_batches(idle_s=5), Batch.objects.get(pk=batch.pk).status == "done")[1], 240,
                 "the second worker to finish")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    batch.refresh_from_db()
    assert (batch.done, batch.total) == (total, total)
    lines = list(RoutingDecision.objects.filter(batch=batch).values_list("line", flat=True))
    assert len(lines) == total and sorted(lines) == list(range(1, total + 1))  # exactly one each
    assert not BatchChunk.objects.filter(batch=batch).exclude(status="done").exists()
    if held:  # the chunk the dead worker held was re-claimed by the second
        assert BatchChunk.objects.filter(pk__in=held, attempts__gte=2).count() == len(held)
    connection.close()
