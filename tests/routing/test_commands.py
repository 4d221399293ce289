"""The routing management commands, on valid and malformed input."""
import io
import json

import pytest
from django.core.management import CommandError, call_command

from routing.models import RouterModel, RoutingDecision

pytestmark = pytest.mark.django_db


def run(*args, stdin=None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_route_text_file_in_order(tmp_path, active_router):
    src = tmp_path / "in.txt"
    src.write_text("Write a limerick about a cat.\n\nWhat is the derivative of x^3?\n")
    dst = tmp_path / "out.jsonl"
    run("route", "--input", str(src), "--output", str(dst))
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["Write a limerick about a cat.", "What is the derivative of x^3?"]
    assert [r["category"] for r in rows] == ["writing", "math"]
    for r in rows:
        assert {"confidence", "entropy", "fallback", "expert", "map_version", "router_version"} <= set(r)
    assert RoutingDecision.objects.filter(source="cli").count() == 2


def test_route_jsonl_from_stdin_to_stdout(monkeypatch, active_router):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        b'{"prompt": "Implement quicksort in Go."}\n{"prompt": "Hi there!", "id": 7}\n')))
    out, _ = run("route", "--input", "-", "--output", "-")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["category"] for r in rows][0] == "coding" and len(rows) == 2


def test_route_trains_default_router_on_fresh_database(tmp_path, monkeypatch, trained_router):
    """No active router: `route` trains one from the seed prompts first (training stubbed to the session's)."""
    import routing.services as services

    monkeypatch.setattr(services.engine, "train", lambda *a, **k: trained_router)
    src = tmp_path / "in.txt"
    src.write_text("Tell me a joke\n")
    run("route", "--input", str(src), "--output", str(tmp_path / "o.jsonl"))
    assert RouterModel.objects.filter(is_active=True).count() == 1


@pytest.mark.parametrize("content, message", [
    (b'{"prompt": "ok"}\n{"prompt": "broken"\n', "in.jsonl: line 2: not valid JSON"),
    (b'{"prompt": "ok"}\n\n{"text": "x"}\n', "in.jsonl: line 3: missing field 'prompt'"),
    (b'{"prompt": "caf\xe9"}\n', "in.jsonl: line 1: in.jsonl is not valid UTF-8"),
    (b"", "no prompts found"),
])
def test_malformed_input_fails_and_writes_nothing(tmp_path, active_router, content, message):
    src = tmp_path / "in.jsonl"
    src.write_bytes(content)
    dst = tmp_path / "out.jsonl"
    with pytest.raises(CommandError, match=message):
        run("route", "--input", str(src), "--output", str(dst))
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]
    assert not RoutingDecision.objects.exists()


def test_existing_output_is_kept_on_failure(tmp_path, active_router):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"prompt": 1}\n')
    dst.write_text("previous results\n")
    with pytest.raises(CommandError):
        run("route", "--input", str(src), "--output", str(dst))
    assert dst.read_text() == "previous results\n"


def test_missing_input_file(tmp_path, active_router):
    with pytest.raises(CommandError, match="cannot read"):
        run("route", "--input", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "o"))


def test_train_router_from_labelled_csv(tmp_path, seed_examples):
    rows = ["prompt,category"] + [f'"{p.replace(chr(34), chr(39))}",{c}' for p, c in seed_examples
                                  if c in ("math", "coding", "general")][::6]
    src = tmp_path / "labelled.csv"
    src.write_text("\n".join(rows) + "\n")
    out, _ = run("train_router", "--data", str(src), "--classifier", "knn", "--json")
    summary = json.loads(out)
    assert summary["classifier"] == "knn" and summary["router_version"] == 1
    row = RouterModel.objects.get(is_active=True)
    assert row.categories == ["coding", "general", "math"] and row.training_size == len(rows) - 1
    assert 0 < summary["accuracy"] <= 1


def test_train_router_rejects_unknown_category_and_bad_file(tmp_path):
    src = tmp_path / "l.jsonl"
    src.write_text('{"prompt": "a", "category": "math"}\n{"prompt": "b", "category": "poetry"}\n')
    with pytest.raises(CommandError, match="unknown category in training data: poetry"):
        run("train_router", "--data", str(src))
    src.write_text('{"prompt": "a"}\n')
    with pytest.raises(CommandError, match="line 1: missing field 'category'"):
        run("train_router", "--data", str(src))
    assert not RouterModel.objects.exists()


def test_evaluate_router_reports_metrics(tmp_path, active_router):
    src = tmp_path / "gold.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in [
        {"prompt": "Implement a binary search in Java.", "category": "coding"},
        {"prompt": "Integrate x^2 from 0 to 3.", "category": "math"},
        {"prompt": "Write a short poem about snow.", "category": "writing"},
        {"prompt": "Integrate sin(x) from 0 to pi.", "category": "writing"},  # deliberately mislabelled
    ]) + "\n")
    out, _ = run("evaluate_router", "--input", str(src), "--json")
    report = json.loads(out)
    assert report["n"] == 4 and report["accuracy"] == pytest.approx(0.75)
    assert report["recall"]["coding"] == 1.0 and report["recall"]["writing"] == 0.5
    assert sum(map(sum, report["confusion"])) == 4
    assert report["coverage_curve"][-1]["coverage"] == 1.0
    text, _ = run("evaluate_router", "--input", str(src))
    assert "accuracy 0.750" in text and "Confusion" in text
    assert not RoutingDecision.objects.exists()  # evaluation stores nothing


def test_create_api_token(user):
    out, err = run("create_api_token", user.username)
    from access.services import token_row

    row = token_row(out.strip())
    assert row.user == user and row.scopes == ["batches", "chat", "read", "route"]
    assert 89 <= (row.expires_at - row.created_at).days <= 90 and "expires: 20" in err
    out, err = run("create_api_token", user.username, "--scope", "chat", "--scope", "map:write,read",
                   "--expires", "never", "--name", "ci")
    row = token_row(out.strip())
    assert (row.scopes, row.expires_at, row.name) == (["chat", "map:write", "read"], None, "ci")
    with pytest.raises(CommandError, match="unknown scope: root"):
        run("create_api_token", user.username, "--scope", "root")
    with pytest.raises(CommandError, match="in the past"):
        run("create_api_token", user.username, "--expires", "2001-01-01")
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("create_api_token", "ghost")
