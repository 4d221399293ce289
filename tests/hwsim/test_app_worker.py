"""The simulator's durable work through a real Celery worker process and Redis (distributed mode only): a sweep
closed by its last run, a run whose wake-up was lost finished once the reconciler wakes the worker (its downloads,
written by the worker, served by this process), and a live twin ticking on its own."""
import gzip
import os

import pytest
from django.urls import reverse

from .worker import celery_worker, skip_unless_distributed, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_sweep_runs_on_a_real_worker_and_its_last_run_closes_it(settings):
    skip_unless_distributed()
    from hwsim import services
    from hwsim.models import SimulationRun, Sweep

    with celery_worker() as queue:
        sweep = services.create_sweep(raw={"workload": {"requests": 500}, "seed": 9},
                                      machines=["sn40l-8", "dgx-h100", "dgx-a100"], queue=queue)
        wait_for(lambda: Sweep.objects.get(pk=sweep.pk).status == "done", what="the last run to close the sweep")
    sweep.refresh_from_db()
    runs = SimulationRun.objects.filter(sweep=sweep)
    assert {r.status for r in runs} == {"done"} and all(r.progress_done == 500 for r in runs)
    assert [row["machine"] for row in sweep.comparison] == ["sn40l-8", "dgx-h100", "dgx-a100"]
    by = {row["machine"]: row for row in sweep.comparison}
    assert by["dgx-a100"]["switch_ms_mean"] > by["dgx-h100"]["switch_ms_mean"] > by["sn40l-8"]["switch_ms_mean"]


def test_a_run_whose_wake_up_was_lost_is_finished_by_the_reconciler_and_served_here(settings, client, user):
    skip_unless_distributed()
    from hwsim import parameters as P
    from hwsim import services
    from hwsim.engine import to_csv
    from hwsim.models import SimulationRun

    params = P.normalise({"workload": {"requests": 2000}, "seed": 2})
    run = SimulationRun.objects.create(name="lost", parameters=params, progress_total=2000,
                                       exports_status="pending")  # stored, never sent
    with celery_worker() as queue:
        settings.HWSIM_CELERY_QUEUE = queue  # where the reconciler sends simulations
        assert services.reconcile_simulations()["runs_woken"] == 1
        wait_for(lambda: SimulationRun.objects.get(pk=run.pk).status == "done", what="the woken run")
    run.refresh_from_db()
    assert run.exports_status == "ready" and run.claimed_by.split(":")[1] != str(os.getpid())  # the worker ran it
    client.force_login(user)
    response = client.get(reverse("hwsim:run-csv", args=[run.pk, "requests"]), HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(response.streaming_content)) == \
        to_csv(services.rerun(run), "requests").encode()


def test_the_live_twin_ticks_on_its_own_on_a_real_worker(settings):
    skip_unless_distributed()
    from hwsim import twin
    from hwsim.models import LiveTwin

    with celery_worker() as queue:
        settings.HWSIM_CELERY_QUEUE = queue
        state = twin.start(raw={})  # the first tick now; each one sends the next, TICK_SECONDS later
        wait_for(lambda: LiveTwin.objects.get(pk=state.pk).ticks >= 3, what="three ticks")
        twin.stop()
