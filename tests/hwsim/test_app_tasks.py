"""Runs as durable work: live progress, the claim (a duplicate delivery does nothing, a stale one is taken over and
its old worker writes nothing), outages retried instead of failing the run, sweeps closed by their last run or by
the reconciler, and the reconciler finishing runs whose wake-up or worker was lost."""
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from hwsim import services, tasks
from hwsim.models import RunExport, SimulationRun, Sweep
from hwsim.tasks import run_simulation

from .inline_jobs import inline_jobs  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
SMALL = {"workload": {"requests": 200}, "seed": 4}


def lost_wake_up(django_capture_on_commit_callbacks, create):
    """Call create() and drop the wake-ups it enqueued, as if the broker lost them (or the process died)."""
    with django_capture_on_commit_callbacks(execute=False) as dropped:
        made = create()
    assert dropped, "creating should have enqueued a wake-up"
    return made


def test_a_run_reports_progress_and_stores_its_outputs(inline_jobs, hwsim_events, django_capture_on_commit_callbacks,
                                                       monkeypatch):
    monkeypatch.setattr(services, "PROGRESS_EVERY_S", 0.0)  # report every step, however fast the machine
    with django_capture_on_commit_callbacks(execute=True):
        run = services.create_run(raw={"workload": {"requests": 3000}, "seed": 1})
    run.refresh_from_db()
    assert run.status == "done" and run.progress_done == run.progress_total == 3000 and run.progress_pct == 100
    assert run.summary["requests"] == 3000 and run.finished_at >= run.started_at
    assert {t["tier"] for t in run.outputs["occupancy"]} == {"DDR", "HBM", "SRAM"}
    assert run.outputs["cdf"]["ttft"]["q"][-1] == 1.0
    events = [d for e, d in hwsim_events() if e == "hwsim.progress" and d["run"] == run.pk]
    done = [d["done"] for d in events]
    assert done == sorted(done) and len(set(done)) >= 5  # intermediate progress, in order
    assert events[-1]["status"] == "done" and events[-1]["pct"] == 100


def test_a_duplicate_delivery_does_nothing(inline_jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.create_run(raw=SMALL)
    run.refresh_from_db()
    finished, summary = run.finished_at, run.summary
    assert run_simulation.apply(args=[run.pk]).get() == "skipped"
    run.refresh_from_db()
    assert (run.status, run.finished_at, run.summary) == ("done", finished, summary)


def test_only_one_of_two_claims_wins():
    run = SimulationRun.objects.create(parameters={}, progress_total=1)
    token = services.claim_run(run.pk)
    assert token and SimulationRun.objects.get(pk=run.pk).claimed_by == token
    assert services.claim_run(run.pk) is None
    assert services.claim_run(987654) is None


def test_a_claim_is_taken_over_only_once_stale(settings):
    settings.HWSIM_RUN_STALE_S = 60
    run = SimulationRun.objects.create(parameters={}, progress_total=1, status="running",
                                       claimed_at=timezone.now() - timedelta(seconds=30))
    assert services.claim_run(run.pk) is None  # still fresh: its worker may be busy with it
    SimulationRun.objects.filter(pk=run.pk).update(claimed_at=timezone.now() - timedelta(seconds=61))
    assert services.claim_run(run.pk) is not None
    assert services.claim_run(run.pk) is None  # and only one redelivery gets it


def test_bad_data_fails_the_run_with_a_reason(inline_jobs, make_decisions, django_capture_on_commit_callbacks):
    from routing.models import RoutingDecision

    make_decisions([("coding", 20)] * 3)
    run = lost_wake_up(django_capture_on_commit_callbacks, lambda: services.create_run(
        raw={"workload": {"kind": "replay", "source": "recent", "count": 3}}))
    RoutingDecision.objects.all().delete()  # gone before the worker got to it
    assert run_simulation.apply(args=[run.pk]).get() == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "no longer exist" in run.error


def test_an_outage_retries_with_backoff_keeping_the_claim(inline_jobs, django_capture_on_commit_callbacks,
                                                          monkeypatch):
    """A database outage mid-run is not the run's failure: the task retries (same claim) and the run finishes."""
    from hwsim import parameters

    run = lost_wake_up(django_capture_on_commit_callbacks, lambda: services.create_run(raw=SMALL))
    build, calls, delays = parameters.build, [], []

    def flaky_build(params):
        calls.append(SimulationRun.objects.get(pk=run.pk).claimed_by)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return build(params)

    monkeypatch.setattr(parameters, "build", flaky_build)
    monkeypatch.setattr(tasks, "retry_delay", lambda retries: delays.append(retries) or 0)
    run_simulation.apply(args=[run.pk], throw=False)  # eager Celery runs the retry at once (a worker waits)
    run.refresh_from_db()
    assert (run.status, run.error) == ("done", "")
    assert len(calls) == 2 and calls[0] == calls[1] != ""  # the retry kept the first claim
    assert delays == [0]


def test_a_sweep_runs_every_combination_and_stores_a_comparison(inline_jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sweep = services.create_sweep(raw={"experts": {"source": "uniform", "count": 60, "params": 6.74e9},
                                           "workload": {"requests": 400, "zipf_s": 0.5, "rate": 0.5}, "seed": 5},
                                      machines=["sn40l-8", "dgx-h100"], policies=["lru", "lfu"])
    sweep.refresh_from_db()
    assert sweep.status == "done" and sweep.finished_at is not None
    assert SimulationRun.objects.filter(sweep=sweep, status="done").count() == 4
    table = {(r["machine"], r["policy"]): r for r in sweep.comparison}
    assert set(table) == {("sn40l-8", "lru"), ("sn40l-8", "lfu"), ("dgx-h100", "lru"), ("dgx-h100", "lfu")}
    sn, dgx = table["sn40l-8", "lru"], table["dgx-h100", "lru"]
    assert dgx["hbm_hit_rate"] == pytest.approx(sn["hbm_hit_rate"], abs=0.1)  # same traffic, similar HBM
    assert dgx["switch_ms_mean"] > 10 * sn["switch_ms_mean"]
    assert dgx["ttft_p90_ms"] > 2 * sn["ttft_p90_ms"]  # a quarter of requests miss: PCIe paging shows in the tail
    assert sn["ttft_p50_vs_first"] == 1.0
    assert dgx["ttft_p50_vs_first"] == pytest.approx(dgx["ttft_p50_ms"] / sn["ttft_p50_ms"])


def test_a_sweep_finishes_when_its_last_run_does(inline_jobs, django_capture_on_commit_callbacks, hwsim_events):
    sweep = lost_wake_up(django_capture_on_commit_callbacks, lambda: services.create_sweep(
        raw=SMALL, machines=["sn40l-8", "dgx-h100", "dgx-a100"]))
    first, second, last = sweep.runs.order_by("id")
    assert run_simulation.apply(args=[first.pk]).get() == "done"
    SimulationRun.objects.filter(pk=second.pk).update(status="failed", error="gave up")
    assert Sweep.objects.get(pk=sweep.pk).status == "queued"  # one run still to go
    with django_capture_on_commit_callbacks(execute=True):  # events go out on commit
        assert run_simulation.apply(args=[last.pk]).get() == "done"
    sweep.refresh_from_db()
    assert sweep.status == "done" and [r["status"] for r in sweep.comparison] == ["done", "failed", "done"]
    assert ("hwsim.sweep", {"sweep": sweep.pk, "status": "done"}) in hwsim_events()


def test_finishing_a_sweep_twice_keeps_the_first_result():
    sweep = Sweep.objects.create(name="s")
    SimulationRun.objects.create(parameters=services.sweep_grid({}, ["sn40l-8"])[0], sweep=sweep, status="failed")
    assert services.finish_sweep(sweep.pk) == "failed"
    first = Sweep.objects.get(pk=sweep.pk).finished_at
    services.finish_sweep(sweep.pk)
    assert Sweep.objects.get(pk=sweep.pk).finished_at == first


# -- the reconciler --------------------------------------------------------------------------------------
def test_the_reconciler_runs_a_run_whose_wake_up_was_lost(inline_jobs, settings, django_capture_on_commit_callbacks):
    settings.COE_RECONCILE_IDLE_S = 60
    run = lost_wake_up(django_capture_on_commit_callbacks, lambda: services.create_run(raw=SMALL))
    assert services.reconcile_simulations()["runs_woken"] == 0  # woken a moment ago: its message may be on its way
    assert SimulationRun.objects.get(pk=run.pk).status == "queued"
    later = timezone.now() + timedelta(seconds=61)
    assert services.reconcile_simulations(now=later) == {"runs_woken": 1, "downloads_woken": 0,
                                                         "sweeps_finished": 0}
    run.refresh_from_db()
    assert (run.status, run.progress_done, run.exports_status) == ("done", 200, "ready")
    assert run.queued_at == later
    assert services.reconcile_simulations(now=later + timedelta(hours=1))["runs_woken"] == 0  # done: left alone


def test_the_reconciler_takes_over_a_stale_claim_and_the_old_worker_writes_nothing(
        inline_jobs, settings, django_capture_on_commit_callbacks):
    settings.HWSIM_RUN_STALE_S = 60
    run = lost_wake_up(django_capture_on_commit_callbacks, lambda: services.create_run(raw=SMALL))
    dead = services.claim_run(run.pk)  # a worker claimed it and died
    assert services.reconcile_simulations()["runs_woken"] == 0  # a live claim is respected
    SimulationRun.objects.filter(pk=run.pk).update(claimed_at=timezone.now() - timedelta(seconds=61))
    assert services.reconcile_simulations()["runs_woken"] == 1
    run.refresh_from_db()
    assert run.status == "done" and run.claimed_by not in ("", dead) and run.exports_token == run.claimed_by
    served = set(RunExport.objects.filter(run=run).values_list("pk", flat=True))
    assert services.execute_run(run.pk, dead) == "lost"  # the "dead" worker wakes up too late
    run.refresh_from_db()
    assert run.status == "done" and set(RunExport.objects.filter(run=run).values_list("pk", flat=True)) == served


def test_the_reconciler_finishes_a_sweep_whose_runs_all_ended(inline_jobs, django_capture_on_commit_callbacks):
    sweep = lost_wake_up(django_capture_on_commit_callbacks, lambda: services.create_sweep(
        raw=SMALL, machines=["sn40l-8", "dgx-h100"]))
    SimulationRun.objects.filter(sweep=sweep).update(status="failed", error="worker lost")  # nobody closed it
    other = lost_wake_up(django_capture_on_commit_callbacks, lambda: services.create_sweep(
        raw=SMALL, machines=["sn40l-8", "dgx-h100"]))
    SimulationRun.objects.filter(pk=other.runs.order_by("id")[0].pk).update(status="done")
    counts = services.reconcile_simulations(now=timezone.now())  # the other sweep's queued run is not idle yet
    assert counts["sweeps_finished"] == 1
    assert Sweep.objects.get(pk=sweep.pk).status == "failed" and Sweep.objects.get(pk=other.pk).status == "queued"
    assert services.reconcile_simulations()["sweeps_finished"] == 0


def test_the_reconciler_is_registered(monkeypatch):
    from coe_site import jobs
    from hwsim import twin

    monkeypatch.setattr(jobs, "send", lambda *a, **k: None)
    report = jobs.reconcile()
    assert report[services.reconcile_simulations.__qualname__] == {"runs_woken": 0, "downloads_woken": 0,
                                                                   "sweeps_finished": 0}
    assert report[twin.reconcile_twin.__qualname__] == {"twins_woken": 0}
