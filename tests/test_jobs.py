"""The one job helper in embedded mode: jobs run on the process's runner after commit, and the embedded reconciler
finishes work whose wake-up never came (a web process that restarted, a job lost with its thread)."""
import pytest

from coe_site import jobs
from routing.models import Batch, BatchChunk, RoutingDecision
from tests.realtime_servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_embedded_reconciler_finishes_a_batch_nobody_woke_a_worker_for(active_router, user, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = settings.COE_EMBEDDED_RECONCILER = True  # embedded mode, also in the PG pass
    settings.COE_RECONCILE_EVERY_S = 0.5
    settings.COE_RECONCILE_IDLE_S = 0
    batch = Batch.objects.create(total=4, created_by=user, name="orphan")  # rows only: no message was ever sent
    for n in range(2):
        BatchChunk.objects.create(batch=batch, index=n, items=[[2 * n + 1, f"Solve {n} + 1.", "", ""],
                                                               [2 * n + 2, f"Write a poem about {n}.", "", ""]])
    stop = jobs.start_embedded_reconciler()
    assert stop is not None and jobs.start_embedded_reconciler() is None  # one sweeper per process
    try:
        wait_until(lambda: Batch.objects.get(pk=batch.pk).status == "done", 60, what="the sweeper to route it")
    finally:
        stop.set()
    assert sorted(RoutingDecision.objects.filter(batch=batch).values_list("line", flat=True)) == [1, 2, 3, 4]
    wait_until(lambda: jobs._pool.get("sweeper") is None, 10, what="the sweeper to stop")


def test_the_embedded_reconciler_is_off_in_distributed_mode_or_when_disabled(settings):
    settings.COE_EMBEDDED_RECONCILER = False
    assert jobs.start_embedded_reconciler() is None
    settings.COE_EMBEDDED_RECONCILER, settings.CELERY_TASK_ALWAYS_EAGER = True, False
    assert jobs.start_embedded_reconciler() is None


def test_reconcile_reports_each_reconciler_and_survives_one_failing(monkeypatch):
    def broken():
        raise RuntimeError("database is down")

    monkeypatch.setattr(jobs, "_reconcilers", [*jobs._reconcilers, broken])
    report = jobs.reconcile()
    assert report["test_reconcile_reports_each_reconciler_and_survives_one_failing.<locals>.broken"] == \
        {"error": "RuntimeError: database is down"}
    assert {"reconcile_batches", "reconcile_trainings"} <= set(report)
