"""Fault injection on the real services (issue 12): a batch loses no prompt and duplicates none when its broker
restarts without persistence, when its database goes away for a while, or when it was uploaded while the broker was
down. Every test starts its own broker (a private ``redis-server``) and cuts the database through its own TCP proxy —
never the machine's shared services — and runs a real Celery worker and Celery beat (the reconciler).

Each asserts: every prompt of the batch ends with exactly one decision, and the batch reaches ``done`` within a
bounded time after the fault clears.
"""
import os
import signal
import uuid

import pytest
from django.db import connection

from routing.engine.inputs import Item
from routing.models import Batch, BatchChunk, RoutingDecision
from tests.faults.proxy import TcpProxy
from tests.realtime_servers import RedisServer
from tests.workers import start_beat, start_worker, wait_for

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="needs PostgreSQL (DATABASE_URL): worker processes share the test database; "
                              "runs in the distributed pass"),
    pytest.mark.django_db(transaction=True),
]
TOTAL, CHUNK = 600, 30
FAST_RECONCILE = {"COE_RECONCILE_EVERY_S": 2, "COE_RECONCILE_IDLE_S": 3, "COE_CHUNK_STALE_S": 6,
                  "CELERY_BROKER_URL": None}


@pytest.fixture
def broker(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def processes():
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def env_for(broker, **extra):
    return {**{k: v for k, v in FAST_RECONCILE.items() if v is not None}, "REDIS_URL": broker.url,
            "CELERY_BROKER_URL": broker.url, **extra}


def upload(settings):
    """The batch's rows, committed; its wake-ups go to a queue nobody reads (as if lost), so only the reconciler of
    the processes under test can get it routed."""
    from routing.services import create_batch

    settings.COE_BATCH_QUEUE = f"nobody-{uuid.uuid4().hex[:6]}"
    settings.COE_BATCH_CHUNK_SIZE = CHUNK
    items = [Item(i + 1, f"Question {i}: what is {i} times {i + 3}? Show the steps.") for i in range(TOTAL)]
    return create_batch(items=items, name="fault test")


def exactly_once(batch):
    batch.refresh_from_db()
    lines = list(RoutingDecision.objects.filter(batch=batch).values_list("line", flat=True))
    assert (batch.status, batch.done) == ("done", TOTAL), (batch.status, batch.done, batch.errors[:3])
    assert len(lines) == TOTAL and sorted(lines) == list(range(1, TOTAL + 1))
    assert not BatchChunk.objects.filter(batch=batch).exclude(status="done").exists()
    connection.close()


def test_broker_restart_without_persistence_mid_batch(active_router, settings, broker, processes, tmp_path):
    batch = upload(settings)
    queue = f"chunks-{uuid.uuid4().hex[:6]}"
    env = env_for(broker)
    processes.append(start_worker(queue, "w1", log=tmp_path / "worker.log", all_queues=True, **env))
    processes.append(start_beat(tmp_path, log=tmp_path / "beat.log", **env))
    wait_for(lambda: Batch.objects.get(pk=batch.pk).done >= 5 * CHUNK, 120, "routing to get going")
    before = broker.client().info("server")["run_id"]
    broker.stop()  # every queued wake-up is gone: the broker keeps nothing on disk
    broker.start()
    # a new server with nothing on disk to reload (the worker and beat may already have written to it again)
    assert broker.client().info("server")["run_id"] != before
    assert broker.client().config_get("save")["save"] == "" and broker.client().config_get("appendonly")["appendonly"] == "no"
    assert not list((tmp_path).glob("**/dump.rdb")) and not list((tmp_path).glob("**/appendonly*"))
    wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "done", 180,
             "the reconciler to re-queue what the broker lost " + (tmp_path / "worker.log").read_text()[-2000:])
    exactly_once(batch)


def test_database_outage_mid_batch(active_router, settings, broker, processes, tmp_path):
    proxy = TcpProxy(int(settings.DATABASES["default"]["PORT"] or 5432)).start()
    try:
        batch = upload(settings)
        queue = f"chunks-{uuid.uuid4().hex[:6]}"
        from tests.workers import database_url

        env = env_for(broker, DATABASE_URL=database_url(proxy.port))
        processes.append(start_worker(queue, "w1", log=tmp_path / "worker.log", all_queues=True, **env))
        processes.append(start_beat(tmp_path, log=tmp_path / "beat.log", **env))
        wait_for(lambda: Batch.objects.get(pk=batch.pk).done >= 3 * CHUNK, 120, "routing to get going")
        proxy.cut()  # the worker's database is gone for 12 s; its tasks must retry, not be acknowledged as done
        during = Batch.objects.get(pk=batch.pk).done
        import time

        time.sleep(12)  # the outage itself: a fixed length is the fault being injected, not a wait for a result
        assert Batch.objects.get(pk=batch.pk).done == during  # nothing was written while the database was away
        proxy.restore()
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "done", 180,
                 "the batch to finish after the outage " + (tmp_path / "worker.log").read_text()[-2000:])
        exactly_once(batch)
    finally:
        proxy.stop()


def test_upload_while_the_broker_is_down_is_kept_and_routed_when_it_returns(active_router, settings, processes,
                                                                            tmp_path, broker):
    """Over HTTP on a real server whose broker is down: the upload answers JSON at once and leaves the batch pending
    (the rows are the outbox); once the broker is back, beat and a worker route all of it."""
    import httpx

    from access.services import issue_token
    from tests.conftest import make_user
    from tests.realtime_servers import daphne

    uploader = make_user("uploader", "Operators")
    token = issue_token(user=uploader, scopes=["batches"])[0]
    prompts = [f"Question {i}: what is {i} times {i + 3}? Show the steps." for i in range(TOTAL)]
    queue = f"chunks-{uuid.uuid4().hex[:6]}"
    env = env_for(broker, COE_BATCH_QUEUE=queue, COE_BATCH_CHUNK_SIZE=CHUNK)
    with daphne(tmp_path, **env) as (url, log):
        broker.stop()  # the web process started with its broker; now the broker is gone
        r = httpx.post(f"{url}/api/batches", json={"prompts": prompts}, timeout=60,
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text[:500]
        batch = Batch.objects.get(pk=r.json()["id"])
        assert (batch.status, batch.done, batch.chunks.count()) == ("queued", 0, TOTAL // CHUNK)
        status = httpx.get(f"{url}/api/batches/{batch.pk}", headers={"Authorization": f"Bearer {token}"},
                           timeout=30)
        assert status.status_code == 200 and status.json()["status"] == "queued"
    broker.start()
    processes.append(start_worker(queue, "w1", log=tmp_path / "worker.log", all_queues=True, **env))
    processes.append(start_beat(tmp_path, log=tmp_path / "beat.log", **env))
    wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "done", 180,
             "the batch uploaded during the outage to be routed " + (tmp_path / "worker.log").read_text()[-2000:])
    exactly_once(batch)
