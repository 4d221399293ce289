"""Uploads → batches: parsing with line-numbered errors, reject-whole, chunking, status and downloadable results.

Chunks are routed inline here (eager, no thread) so each test sees the finished batch; the Celery path and the
background thread are covered in test_tasks.py.
"""
import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from routing.engine.inputs import read_items
from routing.models import Batch, BatchChunk, RoutingDecision


@pytest.fixture
def inline(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.COE_JOBS_IN_BACKGROUND = False
    return settings


@pytest.fixture
def client_in(client, user):
    client.force_login(user)
    return client


def upload(client, name, data, capture):
    with capture(execute=True):
        return client.post("/api/batches", {"file": SimpleUploadedFile(name, data)})


def test_read_items_formats_ids_and_labels():
    assert read_items('{"prompt": "a", "id": 7, "category": "math"}\n\n{"prompt": "b"}\n', "jsonl") == (
        [(1, "a", "7", "math"), (3, "b", "", "")], [])
    items, errors = read_items('id,prompt\nx1,"two\nlines"\n\nx2,plain\n', "csv")
    assert items == [(2, "two\nlines", "x1", ""), (5, "plain", "x2", "")] and errors == []


def test_read_items_reports_every_bad_line():
    items, errors = read_items('{"prompt": "ok"}\n{"prompt": 3}\nnot json\n{"prompt": "x", "id": [1]}\n', "jsonl")
    assert [str(e) for e in errors] == [
        "line 2: 'prompt' must be a string, got int", "line 3: not valid JSON (Expecting value, column 1)",
        "line 4: 'id' must be a string or integer, got list"]
    _, errors = read_items("a,b\n1,2\n", "csv")
    assert str(errors[0]) == "line 1: CSV header lacks a 'prompt' column (found: a, b)"
    _, errors = read_items("prompt\nok\n\"x\",extra\n", "csv")
    assert str(errors[0]) == "line 3: 2 fields but the header has 1 columns"


def test_json_list_upload_is_routed_in_chunks_with_one_decision_per_prompt(
        inline, client_in, active_router, django_capture_on_commit_callbacks):
    inline.COE_BATCH_CHUNK_SIZE = 4
    prompts = ["Solve x^2 - 5x + 6 = 0.", "Write a haiku about autumn rain.", "Fix this Python KeyError.",
               "Summarise the causes of World War I.", "What is 17 * 23?", "Translate 'good morning' to French.",
               "Explain photosynthesis simply.", "Write a SQL query for the top 5 customers.", "Hi there!", "Sort a list in Go."]
    with django_capture_on_commit_callbacks(execute=True):
        r = client_in.post("/api/batches", {"prompts": prompts}, content_type="application/json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["total"] == 10
    batch = Batch.objects.get(pk=body["id"])
    assert list(batch.chunks.values_list("index", "status")) == [(0, "done"), (1, "done"), (2, "done")]
    status = client_in.get(f"/api/batches/{batch.pk}").json()
    assert (status["status"], status["done"], status["total"], status["errors"]) == ("done", 10, 10, [])
    lines = client_in.get(f"/api/batches/{batch.pk}/results?format=jsonl").getvalue().decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["line"] for row in rows] == list(range(1, 11))
    assert [row["prompt"] for row in rows] == prompts
    assert RoutingDecision.objects.filter(batch=batch, source="batch").count() == 10
    assert rows[0]["category"] == "math" and rows[2]["category"] == "coding"


def test_labelled_csv_upload_shows_accuracy_and_csv_results(inline, client_in, active_router,
                                                            django_capture_on_commit_callbacks):
    data = ("id,prompt,category\n"
            "a,Prove that the square root of 2 is irrational.,math\n"
            "b,Write a Rust function that reverses a linked list.,coding\n"
            "c,Write a sonnet about the sea.,coding\n").encode()
    r = upload(client_in, "labelled.csv", data, django_capture_on_commit_callbacks)
    assert r.status_code == 200, r.content
    batch_id = r.json()["id"]
    status = client_in.get(f"/api/batches/{batch_id}").json()
    acc = status["accuracy"]
    routed = list(RoutingDecision.objects.filter(batch_id=batch_id).order_by("line").values_list("category", flat=True))
    assert acc["labelled"] == 3
    assert acc["routed_accuracy"] == pytest.approx(sum(c == l for c, l in zip(routed, ["math", "coding", "coding"])) / 3)
    assert routed[0] == "math" and routed[2] != "coding"  # the third label is deliberately wrong
    table = list(csv.DictReader(io.StringIO(
        client_in.get(f"/api/batches/{batch_id}/results?format=csv").getvalue().decode())))
    assert [(row["line"], row["id"], row["label"]) for row in table] == [("2", "a", "math"), ("3", "b", "coding"),
                                                                       ("4", "c", "coding")]
    assert table[2]["correct"] == "False"
    page = client_in.get(f"/batches/{batch_id}/").content.decode()
    assert 'id="routed-accuracy"' in page and f"{acc['routed_accuracy']:.3f}" in page


@pytest.mark.parametrize("name, data, message", [
    ("bad.txt", b"fine\ncaf\xe9\n", "line 2: bad.txt is not valid UTF-8"),
    ("empty.txt", b"\n  \n", "the file is empty"),
    ("cols.csv", b"text,category\nhello,general\n", "line 1: CSV header lacks a 'prompt' column"),
    ("long.jsonl", b'{"prompt": "ok"}\n{"prompt": "' + b"x" * 40 + b'"}\n', "line 2: prompt is 40 bytes; the limit is 32"),
    ("many.txt", b"a\nb\nc\nd\n", "line 4: too many prompts: the limit is 3 per upload"),
    ("big.txt", b"a" * 130, "the file is 130 bytes; the limit is 128 bytes"),
])
def test_bad_uploads_are_rejected_whole_naming_the_line(inline, client_in, active_router, name, data, message,
                                                        django_capture_on_commit_callbacks):
    inline.COE_ROUTE_MAX_BYTES = 32
    inline.COE_BATCH_MAX_PROMPTS = 3
    inline.COE_BATCH_MAX_BYTES = 128
    r = upload(client_in, name, data, django_capture_on_commit_callbacks)
    assert r.status_code == 400
    error = r.json()["error"]
    assert "rejected whole" in error["message"]
    rendered = [f"line {e['line']}: {e['message']}" if e["line"] else e["message"] for e in error["errors"]]
    assert any(line.startswith(message) for line in rendered), rendered
    assert not Batch.objects.exists() and not RoutingDecision.objects.exists()


def test_partly_valid_json_list_is_rejected_with_every_bad_item(inline, client_in, active_router):
    r = client_in.post("/api/batches", {"prompts": ["ok", 5, {"prompt": "fine", "category": "math"}, "  "]},
                       content_type="application/json")
    assert r.status_code == 400
    assert [(e["line"], e["message"]) for e in r.json()["error"]["errors"]] == [
        (2, "item 2: 'prompt' must be a string, got int"), (4, "item 4: 'prompt' is empty")]
    assert not BatchChunk.objects.exists()
    inline.COE_BATCH_MAX_BYTES = 100
    r = client_in.post("/api/batches", {"prompts": ["x" * 200]}, content_type="application/json")
    assert r.status_code == 400 and "the limit is 100 bytes" in r.json()["error"]["errors"][0]["message"]


def test_upload_page_pastes_prompts_and_explains_the_policy(inline, client_in, active_router,
                                                            django_capture_on_commit_callbacks):
    page = client_in.get("/batches/").content.decode()
    assert "whole upload is rejected" in page
    with django_capture_on_commit_callbacks(execute=True):
        r = client_in.post("/batches/", {"text": "What is 2+2?\n\nWrite a limerick about cats.\n"})
    batch = Batch.objects.get()
    assert r.status_code == 302 and r.url == f"/batches/{batch.pk}/"
    assert (batch.status, batch.done, batch.total, batch.name) == ("done", 2, 2, "pasted text")
    assert list(batch.decisions.order_by("line").values_list("line", flat=True)) == [1, 3]
    r = client_in.post("/batches/", {"file": SimpleUploadedFile("x.jsonl", b'{"prompt": 1}\n')})
    assert r.status_code == 400 and "line 1: &#x27;prompt&#x27; must be a string" in r.content.decode()
    r = client_in.post("/batches/", {"text": "  "})
    assert r.status_code == 400 and "nothing to upload" in r.content.decode()
    assert Batch.objects.count() == 1


def test_api_needs_authentication_and_valid_format(client, inline, user, active_router):
    assert client.post("/api/batches", {"prompts": ["a"]}, content_type="application/json").status_code == 401
    assert not Batch.objects.exists()
    assert client.get("/api/batches/1").status_code == 401
    client.force_login(user)
    assert client.get("/api/batches/999").status_code == 404
    batch = Batch.objects.create(total=0, created_by=user)
    assert client.get(f"/api/batches/{batch.pk}/results?format=xml").status_code == 400
