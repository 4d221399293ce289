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


def test_validate_json_is_the_table_and_every_target_passes():
    rows = json.loads(run("hwsim_validate", "--json"))
    assert len(rows) == 7
    assert all(set(r) == {"target", "published", "simulated", "error_pct"} for r in rows)
    assert all(abs(r["error_pct"]) <= 10 for r in rows)
    switch = next(r for r in rows if r["target"].startswith("switch Llama-2-7B"))
    assert switch["published"] == 13.5 and switch["simulated"] == pytest.approx(13.5, rel=0.1)
    with_coe = json.loads(run("hwsim_validate", "--json", "--coe"))
    assert len(with_coe) == 9 and "CoE batch latency" in with_coe[-1]["target"]
