"""Celery tasks run eagerly: live progress, the idempotent claim, and a sweep collected by its chord."""
import pytest

from hwsim import services
from hwsim.models import SimulationRun, Sweep
from hwsim.tasks import run_simulation

pytestmark = pytest.mark.django_db


def test_a_run_reports_progress_and_stores_its_outputs(eager, hwsim_events, django_capture_on_commit_callbacks,
                                                       monkeypatch):
    monkeypatch.setattr(services, "PROGRESS_EVERY_S", 0.0)  # report every step, however fast the machine
    with django_capture_on_commit_callbacks(execute=True):
        run = services.create_run({"workload": {"requests": 3000}, "seed": 1})
    run.refresh_from_db()
    assert run.status == "done" and run.progress_done == run.progress_total == 3000 and run.progress_pct == 100
    assert run.summary["requests"] == 3000 and run.finished_at >= run.started_at
    assert {t["tier"] for t in run.outputs["occupancy"]} == {"DDR", "HBM", "SRAM"}
    assert run.outputs["cdf"]["ttft"]["q"][-1] == 1.0
    events = [d for e, d in hwsim_events() if e == "hwsim.progress" and d["run"] == run.pk]
    done = [d["done"] for d in events]
    assert done == sorted(done) and len(set(done)) >= 5  # intermediate progress, in order
    assert events[-1]["status"] == "done" and events[-1]["pct"] == 100


def test_a_duplicate_delivery_does_nothing(eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.create_run({"workload": {"requests": 200}})
    run.refresh_from_db()
    finished, summary = run.finished_at, run.summary
    assert run_simulation.apply(args=[run.pk]).get() is None
    run.refresh_from_db()
    assert (run.status, run.finished_at, run.summary) == ("done", finished, summary)


def test_only_one_of_two_claims_wins():
    run = SimulationRun.objects.create(parameters={}, progress_total=1)
    assert services.claim_run(run.pk) is True
    assert services.claim_run(run.pk) is False
    assert services.claim_run(987654) is False


def test_a_run_whose_worker_died_is_claimed_again_by_the_redelivery(eager, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.HWSIM_RUN_STALE_S = 60
    run = SimulationRun.objects.create(parameters={}, progress_total=1, status="running",
                                       started_at=timezone.now() - timedelta(seconds=30))
    assert services.claim_run(run.pk) is False  # still fresh: its worker may be busy with it
    SimulationRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(seconds=61))
    assert services.claim_run(run.pk) is True
    assert services.claim_run(run.pk) is False  # and only one redelivery gets it


def test_bad_data_fails_the_run_with_a_reason(eager, make_decisions, django_capture_on_commit_callbacks):
    from routing.models import RoutingDecision

    make_decisions([("coding", 20)] * 3)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.create_run({"workload": {"kind": "replay", "source": "recent", "count": 3}})
    RoutingDecision.objects.all().delete()  # gone before the worker got to it
    SimulationRun.objects.filter(pk=run.pk).update(status="queued")
    run_simulation.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.status == "failed" and "no longer exist" in run.error


def test_a_sweep_runs_every_combination_and_stores_a_comparison(eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sweep = services.create_sweep({"experts": {"source": "uniform", "count": 60, "params": 6.74e9},
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


def test_finishing_a_sweep_twice_keeps_the_first_result(eager):
    sweep = Sweep.objects.create(name="s")
    SimulationRun.objects.create(parameters=services.sweep_grid({}, ["sn40l-8"])[0], sweep=sweep, status="failed")
    assert services.finish_sweep(sweep.pk) == "failed"
    first = Sweep.objects.get(pk=sweep.pk).finished_at
    services.finish_sweep(sweep.pk)
    assert Sweep.objects.get(pk=sweep.pk).finished_at == first
