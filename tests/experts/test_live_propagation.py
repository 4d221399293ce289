"""A new map version reaches every worker process for its next prompt, with no restart.

Two real Celery worker processes share one queue. Both route batch 1 on v1; v2 is published from this process;
both route batch 2 on v2. Needs PostgreSQL and Redis (runs in CI's distributed pass).
"""
import os
import signal

import pytest

from experts.selectors import current_map
from experts.services import publish_map
from routing.engine.inputs import Item
from routing.models import Batch, BatchChunk, RoutingDecision

from ..workers import start_worker, wait_for

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"),
                       reason="needs REDIS_URL and DATABASE_URL (PostgreSQL): runs in the distributed pass"),
    pytest.mark.django_db(transaction=True),
]
MATH = [f"Solve for x: {i}x + {i + 3} = {5 * i + 3}." for i in range(1, 121)]


def route_batch(name):
    from routing.services import create_batch

    batch = create_batch(items=[Item(i + 1, p) for i, p in enumerate(MATH)], name=name)
    wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "done", 240, f"{name} to finish")
    workers = {token.rsplit(":", 1)[0] for token in
               BatchChunk.objects.filter(batch=batch).values_list("claimed_by", flat=True)}
    decisions = RoutingDecision.objects.filter(batch=batch)
    return workers, set(decisions.values_list("map_version__number", flat=True)), \
        set(decisions.filter(category="math").values_list("expert__name", flat=True))


def test_new_version_reaches_two_running_workers(active_router, settings):
    import uuid

    queue = f"test-map-{uuid.uuid4().hex[:8]}"
    settings.COE_BATCH_QUEUE = queue
    settings.COE_BATCH_CHUNK_SIZE = 10
    workers = [start_worker(queue, f"w{i}") for i in (1, 2)]
    try:
        seen, versions, experts = route_batch("before")
        assert versions == {1} and experts == {"qwen2-72b-instruct"}
        assert len(seen) == 2, f"both workers should have routed chunks, saw {seen}"
        publish_map(base_version=1, assignments={**current_map().assignments, "math": "gemma-2-9b-it"}, note="switch math live")
        seen_after, versions, experts = route_batch("after")
        assert versions == {2} and experts == {"gemma-2-9b-it"}
        assert seen_after == seen  # the same two processes, not restarted
        assert all(w.poll() is None for w in workers)
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait(10)
