"""A sweep through a real Celery worker and Redis: the group runs on the worker, the chord callback closes it."""
import pytest

from .worker import celery_worker, skip_unless_distributed, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_sweep_runs_on_a_real_worker_and_the_chord_closes_it():
    skip_unless_distributed()
    from hwsim import services
    from hwsim.models import SimulationRun, Sweep

    with celery_worker() as queue:
        sweep = services.create_sweep({"workload": {"requests": 500}, "seed": 9},
                                      machines=["sn40l-8", "dgx-h100", "dgx-a100"], queue=queue)
        wait_for(lambda: Sweep.objects.get(pk=sweep.pk).status == "done", what="the chord callback")
    sweep.refresh_from_db()
    runs = SimulationRun.objects.filter(sweep=sweep)
    assert {r.status for r in runs} == {"done"} and all(r.progress_done == 500 for r in runs)
    assert [row["machine"] for row in sweep.comparison] == ["sn40l-8", "dgx-h100", "dgx-a100"]
    by = {row["machine"]: row for row in sweep.comparison}
    assert by["dgx-a100"]["switch_ms_mean"] > by["dgx-h100"]["switch_ms_mean"] > by["sn40l-8"]["switch_ms_mean"]
