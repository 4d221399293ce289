"""`simulate` and `hwsim_validate`: valid runs, the --json shape, and clear errors for bad arguments."""
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db
KEYS = {"wall_seconds", "switches", "hbm_hit_rate", "switch_ms_mean", "ttft_p50_ms", "ttft_p99_ms"}


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_simulate_json_has_the_summary_metrics():
    data = json.loads(run("simulate", "--node", "sn40l-8", "--experts", "40", "--expert-params", "7e9",
                          "--requests", "500", "--policy", "lfu", "--workload", "zipf:1.2", "--seed", "4", "--json"))
    assert KEYS <= set(data)
    assert data["requests"] == 500 and data["experts"] == 40 and data["policy"] == "lfu"
    assert 0 < data["hbm_hit_rate"] < 1 and data["switches"] > 0 and data["ttft_p99_ms"] >= data["ttft_p50_ms"]
    again = json.loads(run("simulate", "--node", "sn40l-8", "--experts", "40", "--expert-params", "7e9",
                           "--requests", "500", "--policy", "lfu", "--workload", "zipf:1.2", "--seed", "4", "--json"))
    assert again["ttft_p50_ms"] == data["ttft_p50_ms"]


def test_simulate_defaults_to_the_current_map_and_prints_text():
    text = run("simulate", "--requests", "50")
    assert "map v1" in text and "hbm_hit_rate" in text


def test_simulate_replays_recent_decisions(make_decisions):
    make_decisions([("coding", 300), ("writing", 300), ("math", 100)] * 5)
    data = json.loads(run("simulate", "--workload", "replay:recent:12", "--rate", "0", "--json"))
    assert data["requests"] == 12
    assert json.loads(run("simulate", "--workload", "replay:recent", "--requests", "15", "--json"))["requests"] == 15


@pytest.mark.parametrize("args, message", [
    (["--node", "tpu"], "unknown machine preset 'tpu'"),
    (["--policy", "mru"], "unknown cache policy 'mru'"),
    (["--experts", "1000", "--expert-params", "7e9"], "DDR holds"),
    (["--experts", "10"], "--experts and --expert-params go together"),
    (["--workload", "poisson"], "--workload must be"),
    (["--workload", "zipf:x"], "needs a number"),
    (["--workload", "replay:recent"], "no routed decisions"),
    (["--workload", "replay:424242"], "424242|Batch"),
])
def test_simulate_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run("simulate", "--requests", "20", *args)


def validate_output(*args):
    """Run hwsim_validate; it prints the table, then exits non-zero when rows are missed."""
    out = StringIO()
    try:
        call_command("hwsim_validate", *args, stdout=out)
        return out.getvalue(), None
    except CommandError as exc:
        return out.getvalue(), str(exc)


def test_validate_json_has_basis_and_source_and_exits_non_zero_exactly_when_rows_miss():
    text, error = validate_output("--json")
    rows = json.loads(text)
    assert all(set(r) == {"target", "published", "simulated", "error_pct", "check", "tolerance_pct", "passed",
                          "basis", "source"} for r in rows)
    assert {r["basis"] for r in rows} == {"calibration", "derived", "independent"}
    missed = [r for r in rows if not r["passed"]]
    assert (error is None) == (not missed)
    if missed:
        assert f"{len(missed)} of {len(rows)} validation rows missed" in error
    switch = next(r for r in rows if r["target"].startswith("switch Llama-2-7B"))
    assert switch["published"] == 13.5 and switch["simulated"] == pytest.approx(13.5)
    assert switch["basis"] == "calibration"
    with_coe = json.loads(validate_output("--json", "--coe")[0])
    assert with_coe["rows"] == rows and {c["machine"] for c in with_coe["coe"]} == {"sn40l-8", "dgx-h100", "dgx-a100"}


def test_validate_text_and_markdown():
    text, _ = validate_output("--coe")
    assert "calibration" in text and "independent" in text and "info  dgx-h100" in text
    markdown, _ = validate_output("--markdown")
    assert markdown.startswith("**Calibrations") and "| basis | source |" in markdown


def test_update_doc_rewrites_only_the_marked_blocks(tmp_path, monkeypatch):
    from hwsim.engine import markdown_sensitivity, markdown_table, sensitivity, validate
    from hwsim.management.commands import hwsim_validate

    doc = tmp_path / "HWSIM.md"
    doc.write_text("intro\n<!-- validation-table:start -->\nold\n<!-- validation-table:end -->\nmiddle\n"
                   "<!-- sensitivity:start -->\nold\n<!-- sensitivity:end -->\noutro\n")
    monkeypatch.setattr(hwsim_validate, "DOC", doc)
    call_command("hwsim_validate", "--update-doc", stdout=StringIO())
    assert doc.read_text() == ("intro\n<!-- validation-table:start -->\n" + markdown_table(validate()) +
                               "<!-- validation-table:end -->\nmiddle\n<!-- sensitivity:start -->\n" +
                               markdown_sensitivity(sensitivity()) + "<!-- sensitivity:end -->\noutro\n")
    doc.write_text("no markers")
    with pytest.raises(CommandError, match="no <!-- validation-table:start -->"):
        call_command("hwsim_validate", "--update-doc", stdout=StringIO())


def test_sensitivity_lists_the_headline_ratios_under_each_variation():
    text = run("hwsim_validate", "--sensitivity")
    assert text.startswith("| variation") and "| published (SN40L paper, Table V) | 3.70 | 6.60 |" in text
    assert "Mistral-7B" in text and len(text.strip().splitlines()) == 10


@pytest.mark.parametrize("node", ["dgx-h100-nvme", "dgx-h100-dram-naive"])
def test_simulate_runs_on_the_loading_media_presets(node):
    data = json.loads(run("simulate", "--node", node, "--experts", "60", "--expert-params", "7e9", "--requests", "300",
                          "--json"))
    assert data["machine"] == node and data["switches"] > 0
    fast = json.loads(run("simulate", "--node", "dgx-h100-dram", "--experts", "60", "--expert-params", "7e9",
                          "--requests", "300", "--json"))
    assert data["switch_ms_mean"] > fast["switch_ms_mean"]  # NVMe or a naive loader is slower than the DRAM pool
