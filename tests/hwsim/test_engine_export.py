"""CSV tables and the Chrome trace have the structure Perfetto and spreadsheets expect."""
import csv
import io
import json

import pytest

from hwsim.engine import (TABLES, CostModel, ExpertSpec, SimConfig, chrome_trace, get_machine, simulate, synthetic,
                          to_csv)

MAP = [ExpertSpec(f"e{i}", 7e9 + i * 1e9) for i in range(12)]


@pytest.fixture(scope="module")
def result():
    wl = synthetic(500, [e.name for e in MAP], rate=2.0, seed=4)
    return simulate(SimConfig(get_machine("dgx-h100").with_values(hbm_bytes=10e9), MAP, snapshot_cap=40), wl)


def test_csv_tables(result):
    rows = {t: list(csv.reader(io.StringIO(to_csv(result, t)))) for t in TABLES}
    assert rows["requests"][0][:3] == ["id", "arrival_s", "expert"] and len(rows["requests"]) == 501
    assert rows["switches"][0] == ["t_s", "expert", "bytes", "duration_ms", "gbps", "evicted"]
    assert len(rows["switches"]) == result.summary()["switches"] + 1
    assert len(rows["experts"]) == len(MAP) + 1
    assert {r[0] for r in rows["occupancy"][1:]} == {"host", "HBM", "SRAM"}
    gbps = [float(r[4]) for r in rows["switches"][1:]]
    assert gbps and all(g == pytest.approx(64.0) for g in gbps)  # DGX H100: host->GPU 64 GB/s, no overhead


def test_csv_to_file_object(result):
    buf = io.StringIO()
    assert to_csv(result, "experts", buf) is None and buf.getvalue().startswith("expert,")
    with pytest.raises(ValueError, match="unknown table"):
        to_csv(result, "nope")


def test_chrome_trace_structure(result):
    trace = json.loads(json.dumps(chrome_trace(result, max_runs=100)))
    events = trace["traceEvents"]
    assert trace["displayTimeUnit"] == "ms" and trace["otherData"]["requests"] == 500
    assert {e["ph"] for e in events} == {"M", "X", "C"}
    spans = [e for e in events if e["ph"] == "X"]
    assert all({"name", "ts", "dur", "pid", "tid"} <= set(e) for e in spans)
    cost, index = CostModel(result.machine, MAP), {e.name: i for i, e in enumerate(MAP)}
    for e in spans:  # in microseconds: a switch moves the weights at 64 GB/s; a pass reads them at least once
        kind, name = e["name"].split(" ", 1)
        i = index[name]
        if kind == "switch":
            assert e["args"]["bytes"] == MAP[i].weight_bytes
            assert e["dur"] == pytest.approx(MAP[i].weight_bytes / 64e9 * 1e6)
        else:
            least = cost.prefill(i, 1) if kind == "prefill" else cost.decode(i, 1, 1, 1)
            assert e["dur"] >= least * 1e6 * (1 - 1e-9)
    assert {e["cat"] for e in spans} == {"switch", "prefill", "decode"}
    assert len([e for e in spans if e["cat"] == "prefill"]) == 100
    compute = sorted((e["ts"], e["ts"] + e["dur"]) for e in spans if e["tid"] == 2)
    assert all(a[1] <= b[0] + 1e-6 for a, b in zip(compute, compute[1:]))  # one expert runs at a time
    counters = [e for e in events if e["ph"] == "C"]
    assert counters and all(set(e["args"]) == {"router", "kv", "expert", "free"} for e in counters)


def test_router_time_is_a_requests_column_and_a_trace_event():
    from hwsim.engine.experts import LLAMA2_7B

    wl = synthetic(40, [e.name for e in MAP], rate=None, seed=1)
    res = simulate(SimConfig(get_machine("sn40l-8"), MAP, router=LLAMA2_7B), wl)
    header = next(csv.reader(io.StringIO(to_csv(res, "requests"))))
    assert "route_ms" in header and header.index("route_ms") < header.index("switch_ms")
    routes = [e for e in chrome_trace(res)["traceEvents"] if e.get("cat") == "route"]
    assert len(routes) == 5 and all(e["tid"] == 2 and e["args"]["prompts"] == 8 for e in routes)
