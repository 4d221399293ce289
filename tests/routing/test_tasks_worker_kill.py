"""A real Celery worker is SIGKILLed mid-batch and another started: every prompt ends with exactly one decision.

Needs PostgreSQL and Redis (the workers are separate processes that must share the test database and a broker):
skipped in embedded mode, runs in CI's distributed pass.
"""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from routing.engine.inputs import Item
from routing.models import Batch, BatchChunk, RoutingDecision

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"),
                       reason="needs REDIS_URL and DATABASE_URL (PostgreSQL): runs in the distributed pass"),
    pytest.mark.django_db(transaction=True),
]


def start_worker(queue, name):
    db = django_settings.DATABASES["default"]
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "COE_BATCH_QUEUE": queue, "COE_CHUNK_STALE_S": "4"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "coe_site", "worker", "--pool=solo", "--concurrency=1", "-Q", queue,
         "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_killed_worker_loses_nothing_and_duplicates_nothing(active_router, settings):
    from routing.services import create_batch

    queue = f"test-kill-{uuid.uuid4().hex[:8]}"
    settings.COE_BATCH_QUEUE = queue
    settings.COE_BATCH_CHUNK_SIZE = 40
    total = 800
    items = [Item(i + 1, f"Question {i}: what is {i} plus {i * 7}? Explain step by step.") for i in range(total)]
    batch = create_batch(items, "kill test")  # autocommit: the 20 chunk tasks go to Redis now
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
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "done", 240, "the second worker to finish")
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
