"""Pages and endpoints: login and permission, form errors, run/sweep pages, downloads that parse, the twin page
(its state is read only: the twin's ticks run as jobs, never in a poll)."""
import csv
import io
import json

import pytest
from django.urls import reverse

from experts.models import Expert
from hwsim.engine import get_machine
from hwsim.models import SimulationRun, Sweep

from .inline_jobs import inline_jobs  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

FORM = {"machine": "sn40l-8", "policy": "lru", "batching": "coe", "batch_size": 8, "experts": "map",
        "workload": "synthetic", "requests": 300, "zipf_s": 1.0, "rate": 0.5, "output_tokens": 64, "seed": 2,
        "expert_count": 150, "expert_params_b": 7, "action": "run"}


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.mark.parametrize("name", ["hwsim:index", "hwsim:validation", "hwsim:provenance", "hwsim:twin",
                                  "hwsim:twin-state"])
def test_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_starting_needs_staff_or_the_permission(client, user):
    from django.contrib.auth.models import Permission

    client.force_login(user)
    page = client.get(reverse("hwsim:index"))
    assert page.status_code == 200 and b'id="no-permission"' in page.content
    assert client.post(reverse("hwsim:index"), FORM).status_code == 403
    assert client.post(reverse("hwsim:twin-start"), {}).status_code == 403
    assert not SimulationRun.objects.exists()
    user.user_permissions.add(Permission.objects.get(codename="start_simulation"))
    client.force_login(user)
    assert client.post(reverse("hwsim:index"), FORM).status_code == 302


@pytest.mark.parametrize("change, message", [
    ({"machine": "custom", "custom_machine": "{not json"}, "not valid JSON"),
    ({"machine": "custom", "custom_machine": '{"base": "sn40l-8", "warp": 9}'}, "unknown machine"),
    ({"experts": "uniform", "expert_count": 1000}, "DDR holds"),
    ({"workload": "recent"}, "no routed decisions"),
    ({"requests": 0}, "greater than or equal to 1"),
    ({"sweep_maps": "1,x", "action": "compare"}, "whole numbers"),
])
def test_form_errors_are_shown(staff_client, change, message):
    response = staff_client.post(reverse("hwsim:index"), {**FORM, **change})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not SimulationRun.objects.exists()


def test_a_run_from_the_form_and_its_downloads(staff_client, inline_jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("hwsim:index"), {**FORM, "hbm_tbps": 2.0})
    run = SimulationRun.objects.get()
    assert response["Location"] == reverse("hwsim:run", args=[run.pk])
    assert run.parameters["machine"]["knobs"] == {"hbm_bw": 2.0e12}
    page = staff_client.get(response["Location"])
    assert page.status_code == 200 and b'id="progress-pct">100%' in page.content
    status = staff_client.get(reverse("hwsim:run-status", args=[run.pk])).json()
    assert status["status"] == "done" and status["pct"] == 100
    data = staff_client.get(reverse("hwsim:run-data", args=[run.pk])).json()
    assert data["outputs"]["switches"]["total"] == data["summary"]["switches"]

    assert status["downloads"] == "ready"
    requests = staff_client.get(reverse("hwsim:run-csv", args=[run.pk, "requests"]))
    assert requests["Content-Type"] == "text/csv; charset=utf-8"
    rows = [{k: v if k == "expert" else float(v) for k, v in r.items()}
            for r in csv.DictReader(io.StringIO(requests.getvalue().decode()))]
    assert len(rows) == 300
    first, machine = rows[0], get_machine("sn40l-8")  # the first request finds the cache empty: it waits for a switch
    weight = Expert.objects.get(name=first["expert"]).weight_bytes
    assert first["switch_ms"] == pytest.approx((machine.v("switch_overhead") + weight / machine.link_total) * 1e3)
    for r in rows:
        assert r["ttft_ms"] == pytest.approx(r["queue_ms"] + r["route_ms"] + r["switch_ms"] + r["prefill_ms"])
        assert r["e2e_ms"] == pytest.approx(r["ttft_ms"] + r["decode_ms"]) and r["prefill_ms"] > 0
    switches = list(csv.reader(io.StringIO(staff_client.get(
        reverse("hwsim:run-csv", args=[run.pk, "switches"])).getvalue().decode())))
    assert switches[0][:2] == ["t_s", "expert"] and len(switches) - 1 == run.summary["switches"]
    trace = json.loads(staff_client.get(reverse("hwsim:run-trace", args=[run.pk])).getvalue())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert {e["cat"] for e in spans} >= {"switch", "prefill", "decode"} and all("ts" in e for e in spans)
    # the trace's spans (microseconds) are the downloads' times: each switch in order, and every pass of the run
    assert [e["dur"] for e in spans if e["cat"] == "switch"] == pytest.approx(
        [float(s[3]) * 1e3 for s in switches[1:]])
    for cat in ("prefill", "decode"):
        assert sum(e["dur"] for e in spans if e["cat"] == cat) == pytest.approx(sum(r[f"{cat}_ms"] for r in rows) * 1e3)
    assert staff_client.get(reverse("hwsim:run-csv", args=[run.pk, "secrets"])).status_code == 404


def test_missing_run_page(staff_client):
    assert staff_client.get(reverse("hwsim:run", args=[999])).status_code == 404


def test_compare_creates_runs_for_each_preset_with_one_seed(staff_client, inline_jobs,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("hwsim:index"), {**FORM, "action": "compare",
                                                              "compare_machines": ["sn40l-8", "dgx-h100"]})
    sweep = Sweep.objects.get()
    assert response["Location"] == reverse("hwsim:sweep", args=[sweep.pk])
    runs = list(sweep.runs.all())
    assert sorted(r.parameters["machine"]["preset"] for r in runs) == ["dgx-h100", "sn40l-8"]
    assert {r.parameters["seed"] for r in runs} == {2} and {r.status for r in runs} == {"done"}
    page = staff_client.get(response["Location"]).content.decode()
    assert page.count('class="run-status">done') == 2
    assert staff_client.get(reverse("hwsim:sweep-status", args=[sweep.pk])).json()["status"] == "done"


def test_validation_and_provenance_tabs(staff_client):
    from hwsim.engine import PRESETS, validate

    page = staff_client.get(reverse("hwsim:validation")).content.decode()
    rows = validate()
    assert page.count('<tr class="pass"') == sum(r["passed"] for r in rows)
    assert page.count('<tr class="fail"') == len(rows) - sum(r["passed"] for r in rows)
    assert "CoE batch latency" in page and 'data-basis="calibration"' in page and 'data-basis="independent"' in page
    prov = staff_client.get(reverse("hwsim:provenance")).content.decode()
    for preset in PRESETS:
        assert f'id="provenance-{preset}"' in prov
    assert "kind-published" in prov and "kind-calibrated" in prov and "Argonne" in prov


def test_twin_page_start_state_and_stop(staff_client, inline_jobs, make_decisions,
                                        django_capture_on_commit_callbacks):
    from hwsim import twin

    with django_capture_on_commit_callbacks(execute=True):
        started = staff_client.post(reverse("hwsim:twin-start"), {"machine": "dgx-h100", "policy": "lru",
                                                                  "batching": "coe", "output_tokens": 32})
    assert started.status_code == 302
    made = make_decisions([("coding", 80), ("writing", 80)])
    state = staff_client.get(reverse("hwsim:twin-state")).json()
    assert state["enabled"] and state["ticks"] == 1 and state["snapshot"]["fed"] == 0  # a poll runs no tick
    assert staff_client.get(reverse("hwsim:twin-state")).json()["ticks"] == 1
    twin.tick(twin.selectors.twin().pk, state["generation"])  # what the next tick job does
    state = staff_client.get(reverse("hwsim:twin-state")).json()
    assert state["ticks"] == 2 and state["position"] == made[-1].pk and state["snapshot"]["fed"] == 2
    assert state["machine"] == "dgx-h100"
    bad = staff_client.post(reverse("hwsim:twin-start"), {"machine": "sn40l-8", "policy": "pinned",
                                                          "batching": "coe", "output_tokens": 32})
    assert bad.status_code == 400
    staff_client.post(reverse("hwsim:twin-stop"))
    assert staff_client.get(reverse("hwsim:twin-state")).json()["enabled"] is False
