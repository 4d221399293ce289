"""The simulator in a real browser: run form → live progress to 100 % → charts; the validation tab passes.

In distributed mode the run goes through a real Celery worker (its own queue), so the page's progress really
is live (polling here: the live server speaks no websocket); in embedded mode Celery runs it in-process."""
import os

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_login(login, django_user_model):
    django_user_model.objects.create_user("sim-staff", password="sim-staff-pass-123", is_staff=True)
    return login("sim-staff", "sim-staff-pass-123")


@pytest.fixture
def simulations(settings):
    """Where the run goes: a worker on its own queue (distributed) or in-process (embedded)."""
    if not os.environ.get("REDIS_URL"):
        yield
        return
    from tests.hwsim.worker import celery_worker, skip_unless_distributed

    skip_unless_distributed()
    with celery_worker() as queue:
        settings.HWSIM_CELERY_QUEUE = queue
        yield


def test_run_form_progress_charts_and_validation(staff_login, simulations, live_server):
    page = staff_login
    page.goto(f"{live_server.url}/hwsim/")
    page.select_option("#id_machine", "dgx-h100")
    page.select_option("#id_experts", "uniform")
    page.fill("#id_expert_count", "60")
    page.fill("#id_expert_params_b", "6.74")
    page.fill("#id_requests", "20000")
    page.fill("#id_rate", "2")
    page.click("#run-button")
    page.wait_for_url("**/hwsim/runs/*/")
    page.wait_for_function("document.querySelector('#progress-pct').textContent === '100%'", timeout=90000)
    assert page.inner_text("#run-status") == "done"
    page.wait_for_selector("#occ-HBM", state="attached")
    assert page.evaluate("Chart.getChart(document.querySelector('#occ-HBM')).data.datasets.length") > 3
    assert page.locator("#occupancy canvas").count() == 3
    from hwsim.models import SimulationRun  # the switch table lists the run's own switches, oldest first

    switches = SimulationRun.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1])).outputs["switches"]
    assert switches["total"] > 0 and page.inner_text("#switch-stats").startswith(f"{switches['total']} switches")
    rows = page.locator("#switch-table tbody tr")
    assert rows.count() == min(100, len(switches["events"]))
    first = rows.first.locator("td").all_inner_texts()
    assert (float(first[0]), first[1]) == (pytest.approx(switches["events"][0]["t_s"], abs=5e-4),
                                           switches["events"][0]["expert"])
    assert page.locator("#downloads").is_visible()

    page.click("#tab-validation")
    from hwsim.engine import validate

    rows = validate()  # the page shows the engine's rows: calibrations apart, every verdict as computed
    checked = [r for r in rows if r["basis"] != "calibration"]
    assert page.locator("#validation-table tbody tr").count() == len(checked) >= 8
    assert page.locator("#calibration-table tbody tr").count() == len(rows) - len(checked)
    verdicts = page.locator("#validation-table .verdict-cell").all_inner_texts()
    assert verdicts == ["pass" if r["passed"] else "MISS" for r in checked]
    assert page.locator("#validation-table tbody tr.pass").count() == sum(r["passed"] for r in checked)


def test_form_errors_show_on_the_page(staff_login, live_server):
    page = staff_login
    page.goto(f"{live_server.url}/hwsim/")
    page.select_option("#id_experts", "uniform")
    page.fill("#id_expert_count", "1000")
    page.fill("#id_expert_params_b", "7")
    page.click("#run-button")
    assert "DDR holds" in page.inner_text("#form-errors")
