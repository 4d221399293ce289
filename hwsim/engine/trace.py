"""Exports: CSV tables and a Chrome trace (the JSON `traceEvents` format that Perfetto and
chrome://tracing open).  The trace puts switches on a "link" track and routing, prefill and decode on a
"compute" track, with HBM occupancy as a counter, so a switch stalling the compute track is visible at a glance.
"""
from __future__ import annotations

import csv
import io
from functools import partial
from types import SimpleNamespace

from .metrics import SimResult

TABLES = ("requests", "switches", "experts", "occupancy")


def _rows(result: SimResult, table: str):
    if table == "requests":
        cols = result.requests()
        keys = list(cols)
        yield keys
        yield from zip(*(cols[k] for k in keys))
    elif table == "switches":
        yield ["t_s", "expert", "bytes", "duration_ms", "gbps", "evicted"]
        for s in result.switches():
            yield [s["t_s"], s["expert"], s["bytes"], s["duration_ms"], s["gbps"], ";".join(s["evicted"])]
    elif table == "experts":
        rows = result.per_expert()
        keys = list(rows[0])
        yield keys
        for r in rows:
            yield [r[k] for k in keys]
    elif table == "occupancy":
        yield ["tier", "t_s", "owner", "kind", "bytes"]
        for tier in result.occupancy()["tiers"]:
            for j, t in enumerate(tier["t"]):
                for o in tier["owners"]:
                    if o["bytes"][j] or o["kind"] == "free":
                        yield [tier["tier"], t, o["owner"], o["kind"], o["bytes"][j]]
    else:
        raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")


def to_csv(result: SimResult, table: str, fp=None):
    """Write one table as CSV to the text file object `fp`, or return it as a string when fp is None."""
    out = io.StringIO() if fp is None else fp
    writer = csv.writer(out, lineterminator="\n")
    for row in _rows(result, table):
        writer.writerow(row)
    return out.getvalue() if fp is None else None


_REQUEST_ARRAYS = ("ids", "arrival", "expert", "prompt", "output", "queue", "route", "switch", "prefill", "decode",
                   "ttft", "e2e")


def _blocks(result: SimResult, table: str, block: int, names: list):
    """Stand-ins for `result` that `_rows` reads one block of a per-request or per-switch table from (the engine's
    own row builders on slices); the small tables come whole."""
    if table == "requests":
        for start in range(0, max(len(result.ids), 1), block):
            part = SimpleNamespace(names=names, **{a: getattr(result, a)[start:start + block] for a in _REQUEST_ARRAYS})
            yield SimpleNamespace(requests=partial(SimResult.requests, part))
    elif table == "switches":
        for start in range(0, max(len(result.switch_events), 1), block):
            part = SimpleNamespace(names=names, weight=result.weight,
                                   switch_events=result.switch_events[start:start + block])
            yield SimpleNamespace(switches=partial(SimResult.switches, part))
    else:
        yield result


def iter_csv(result: SimResult, table: str, text=None, block: int = 10000):
    """`to_csv(result, table)` as a stream of strings of about `block` rows each, never the whole table at once (a
    1M-request run is 137 MB of CSV).  `text`, when given, maps every text cell (e.g. to neutralise spreadsheet
    formulas); without it the pieces joined equal to_csv's output byte for byte."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [text(n) for n in result.names] if text and table == "requests" else result.names
    for n, view in enumerate(_blocks(result, table, block, names)):
        rows = _rows(view, table)
        if n:
            next(rows)  # the header comes with the first block only
        if text and table != "requests":  # requests: its one text column, the expert name, is mapped above
            rows = ([text(v) if isinstance(v, str) else v for v in row] for row in rows)
        writer.writerows(rows)
        yield out.getvalue()
        out.seek(0)
        out.truncate()


def chrome_trace(result: SimResult, max_runs: int | None = 20000) -> dict:
    """Trace events for the first `max_runs` expert runs (None: all).  Times are microseconds."""
    pid, link, compute = 1, 1, 2
    name = result.machine.name
    events = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": f"hwsim {name}"}},
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": link,
         "args": {"name": f"{result.machine.home_tier}->HBM link"}},
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": compute, "args": {"name": "compute"}},
    ]
    names, us = result.names, 1e6
    for t, e, b, sw, pf, dec in result.runs[:max_runs]:
        expert = names[e]
        if sw:
            events.append({"ph": "X", "name": f"switch {expert}", "cat": "switch", "pid": pid, "tid": link,
                           "ts": t * us, "dur": sw * us,
                           "args": {"bytes": result.weight[e], "gbps": result.weight[e] / sw / 1e9}})
        events.append({"ph": "X", "name": f"prefill {expert}", "cat": "prefill", "pid": pid, "tid": compute,
                       "ts": (t + sw) * us, "dur": pf * us, "args": {"batch": b}})
        if dec:
            events.append({"ph": "X", "name": f"decode {expert}", "cat": "decode", "pid": pid, "tid": compute,
                           "ts": (t + sw + pf) * us, "dur": dec * us, "args": {"batch": b}})
    horizon = result.runs[max_runs - 1][0] if max_runs and len(result.runs) > max_runs else float("inf")
    for t, r, n in result.route_events:
        if t > horizon:
            break
        events.append({"ph": "X", "name": "route", "cat": "route", "pid": pid, "tid": compute, "ts": t * us,
                       "dur": r * us, "args": {"prompts": n}})
    occupancy = next(tier for tier in result.occupancy()["tiers"] if tier["tier"] == "HBM")
    by_kind = {}
    for o in occupancy["owners"]:
        col = by_kind.setdefault(o["kind"], [0.0] * len(occupancy["t"]))
        by_kind[o["kind"]] = [a + b for a, b in zip(col, o["bytes"])]
    for j, t in enumerate(occupancy["t"]):
        if t > horizon:
            break
        events.append({"ph": "C", "name": "HBM bytes", "pid": pid, "ts": t * us,
                       "args": {k: v[j] for k, v in by_kind.items()}})
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": result.summary()}
