"""A "route and answer" batch run by a real Celery worker: its chunks go to serving's task by name
(``serving.answer_chunk``), which the worker knows, and every prompt ends with one decision and one answered call.

Needs PostgreSQL and Redis (the worker is a separate process sharing the test database and a broker): skipped in
embedded mode, runs in CI's distributed pass.
"""
import os
import uuid

import pytest
from django.db import connection

from routing.models import Batch, RoutingDecision
from serving.models import ExpertCall
from tests.fakes.openai_server import FakeOpenAI

from ..workers import start_worker, wait_for

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"),
                       reason="needs REDIS_URL and DATABASE_URL (PostgreSQL): runs in the distributed pass"),
    pytest.mark.django_db(transaction=True),
]


def test_a_worker_routes_and_answers_a_batch(active_router, settings, tmp_path):
    from experts.selectors import current_map
    from experts.services import save_expert
    from routing.services import create_batch

    queue = f"test-answer-{uuid.uuid4().hex[:8]}"
    settings.COE_BATCH_QUEUE = queue
    settings.COE_BATCH_ANSWER_CHUNK_SIZE = 3
    prompts = [f"Question {i}: what is {i} times {i + 2}? Show the steps." for i in range(7)]
    with FakeOpenAI() as fake:
        for name in set(current_map().assignments.values()):
            save_expert(name=name, data={"backend": "openai", "base_url": fake.base_url, "max_retries": 0,
                                         "first_token_timeout_s": 5.0})
        batch = create_batch(items=[(i + 1, p, "", "") for i, p in enumerate(prompts)], name="answered by a worker",
                             answer=True)  # autocommit: the 3 chunk wake-ups go to Redis now
        worker = start_worker(queue, "answers", log=tmp_path / "worker.log")
        try:
            wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "done", 120,
                     "the worker to answer the batch " + (tmp_path / "worker.log").read_text()[-2000:])
        finally:
            os.killpg(worker.pid, 9)
            worker.wait(10)
    decisions = RoutingDecision.objects.filter(batch=batch)
    assert sorted(decisions.values_list("line", flat=True)) == list(range(1, 8))
    calls = ExpertCall.objects.filter(decision__batch=batch)
    assert calls.count() == 7 and set(calls.values_list("status", "source").distinct()) == {("ok", "batch")}
    assert all(d.calls.get().response == "Echo: " + d.prompt and d.answered_by_id == d.expert_id for d in decisions)
    connection.close()
