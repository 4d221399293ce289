"""Writes for the simulator: create runs and sweeps, execute a run with live progress, store compacted
outputs, close a sweep with its comparison table.  The live twin lives in twin.py.

Tasks only call these functions with primary keys; a run is claimed with a conditional UPDATE
(queued → running), so a duplicate delivery of the same task does nothing.
"""
import logging
import time
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from coe_site.realtime import publish
from hwsim.engine import ConfigError, coe_latency_report, simulate, validate

from . import parameters as P
from .models import SimulationRun, Sweep

log = logging.getLogger(__name__)
OWNERS_CAP = 12  # owners drawn per tier; the rest fold into "other experts"
SWITCHES_CAP = 500  # switch events kept per run (the count and means cover all of them)
PROGRESS_EVERY_S = 0.25


# -- creating ---------------------------------------------------------------------------------------------
def _queue(queue):
    """The queue simulations go to: the caller's, else settings.HWSIM_CELERY_QUEUE (optional: lets a
    deployment keep CPU-heavy simulations on their own workers), else Celery's default."""
    return queue or getattr(settings, "HWSIM_CELERY_QUEUE", None)


def _enqueue_run(run_id, queue=None):
    from .tasks import run_simulation

    run_simulation.apply_async((run_id,), queue=_queue(queue))


def create_run(raw, user=None, queue=None):
    """Validate the parameters, store a queued run and enqueue it once the transaction commits."""
    params = P.normalise(raw)
    with transaction.atomic():
        run = SimulationRun.objects.create(name=P.describe(params), parameters=params,
                                           progress_total=P.request_count(params), created_by=user)
        transaction.on_commit(lambda: _enqueue_run(run.pk, queue))
    return run


def sweep_grid(raw, machines=(), policies=(), maps=()):
    """Parameter sets for machines × policies × map versions around the base parameters `raw`."""
    machines = list(machines) or [None]
    policies = list(policies) or [raw.get("policy", "lru")]
    maps = list(maps) or [None]
    grid = []
    for machine in machines:
        for policy in policies:
            for version in maps:
                one = {**raw, "policy": policy}
                if machine is not None:
                    one["machine"] = {"preset": machine}
                if version is not None:
                    one["experts"] = {"source": "map", "map_version": version}
                grid.append(P.normalise(one))
    return grid


def create_sweep(raw, machines=(), policies=(), maps=(), user=None, queue=None, name=""):
    """Validate every combination first (all or nothing), store them, and enqueue a chord on commit."""
    grid = sweep_grid(raw, machines, policies, maps)
    if len(grid) < 2:
        raise ConfigError("a comparison needs at least two combinations (pick two machines, policies or maps)")
    if len(grid) > 48:
        raise ConfigError(f"{len(grid)} combinations is more than the 48 a sweep may hold")
    with transaction.atomic():
        sweep = Sweep.objects.create(name=name or f"{len(grid)} runs · {P.describe(grid[0])}", created_by=user)
        runs = SimulationRun.objects.bulk_create([
            SimulationRun(name=P.describe(p), parameters=p, progress_total=P.request_count(p), sweep=sweep,
                          created_by=user) for p in grid])
        ids = [r.pk for r in runs]  # bulk_create sets pks on PostgreSQL and SQLite
        transaction.on_commit(lambda: _enqueue_sweep(sweep.pk, ids, queue))
    return sweep


def _enqueue_sweep(sweep_id, run_ids, queue=None):
    from celery import chord, group

    from .tasks import finish_sweep, run_simulation

    queue = _queue(queue)
    options = {"queue": queue} if queue else {}
    chord(group(run_simulation.si(i).set(**options) for i in run_ids))(finish_sweep.si(sweep_id).set(**options))


# -- running ----------------------------------------------------------------------------------------------
def claim_run(run_id):
    """queued → running, atomically; False when another delivery (or nobody: bad id) already has it.

    A run left "running" for longer than ``HWSIM_RUN_STALE_S`` lost its worker (a run takes seconds; acks_late
    redelivers the message) and is claimed again; the result is deterministic, so a late duplicate writes the same.
    """
    stale = timezone.now() - timedelta(seconds=getattr(settings, "HWSIM_RUN_STALE_S", 600))
    return bool(SimulationRun.objects.filter(Q(status="queued") | Q(status="running", started_at__lt=stale),
                                             pk=run_id)
                .update(status="running", started_at=timezone.now(), error=""))


def _progress_event(run_id, done, total, status):
    return {"run": run_id, "done": done, "total": total, "status": status,
            "pct": 100 if status == "done" else int(100 * done / total) if total else 0}


def execute_run(run_id):
    """Claim and simulate one run, storing progress as it goes; returns the final status (or None when
    this delivery did not get the claim).  Bad parameters or data mark the run failed with the reason."""
    if not claim_run(run_id):
        return None
    run = SimulationRun.objects.defer("outputs").get(pk=run_id)
    last = [0.0]

    def progress(done, total):
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        SimulationRun.objects.filter(pk=run_id).update(progress_done=done, progress_total=total)
        publish("hwsim", "hwsim.progress", _progress_event(run_id, done, total, "running"))

    try:
        config, workload = P.build(run.parameters)
        total = len(workload)
        publish("hwsim", "hwsim.progress", _progress_event(run_id, 0, total, "running"))
        result = simulate(config, workload, progress=progress, every=max(200, total // 100))
        summary, outputs = result.summary(), compact_outputs(result)
    except ConfigError as exc:
        return _fail(run_id, str(exc))
    except Exception as exc:  # stored for the user; the traceback goes to the log
        log.exception("simulation run %s failed", run_id)
        return _fail(run_id, f"internal error: {type(exc).__name__}: {exc}")
    SimulationRun.objects.filter(pk=run_id).update(
        status="done", summary=summary, outputs=outputs, progress_done=total, progress_total=total,
        finished_at=timezone.now())
    publish("hwsim", "hwsim.progress", {**_progress_event(run_id, total, total, "done"), "summary": summary})
    return "done"


def _fail(run_id, message):
    SimulationRun.objects.filter(pk=run_id).update(status="failed", error=message, finished_at=timezone.now())
    publish("hwsim", "hwsim.progress", {**_progress_event(run_id, 0, 0, "failed"), "error": message})
    return "failed"


def rerun(run):
    """The full engine result of a stored run, recomputed (runs are seeded; used by the big downloads)."""
    config, workload = P.build(run.parameters)
    return simulate(config, workload)


# -- compacting outputs -----------------------------------------------------------------------------------
def _fold_owners(tier, cap):
    """Keep the `cap` expert owners with the most byte-time; fold the others into 'other experts'."""
    experts = [o for o in tier["owners"] if o["kind"] == "expert"]
    rest = [o for o in tier["owners"] if o["kind"] != "expert"]
    experts.sort(key=lambda o: -sum(o["bytes"]))
    kept, folded = experts[:cap], experts[cap:]
    if folded:
        kept.append({"owner": f"{len(folded)} other experts", "kind": "expert",
                     "bytes": [sum(col) for col in zip(*(o["bytes"] for o in folded))]})
    owners = [o for o in rest if o["kind"] != "free"] + kept + [o for o in rest if o["kind"] == "free"]
    return {"tier": tier["tier"], "capacity": tier["capacity"], "t": [round(t, 6) for t in tier["t"]],
            "owners": [{**o, "bytes": [round(b) for b in o["bytes"]]} for o in owners]}


def compact_outputs(result):
    """JSON outputs bounded in size whatever the request count (see the model docstring)."""
    residency = result.residency()
    events = result.switches()
    gbps = [e["gbps"] for e in events if e["gbps"]]
    return {
        "occupancy": [_fold_owners(t, OWNERS_CAP) for t in result.occupancy()["tiers"]],
        "residency": {"t": [round(t, 6) for t in residency["t"]], "experts": residency["experts"],
                      "rows": ["".join(map(str, row)) for row in residency["resident"]]},
        "switches": {"total": len(events), "gbps_mean": sum(gbps) / len(gbps) if gbps else 0.0,
                     "duration_ms_mean": sum(e["duration_ms"] for e in events) / len(events) if events else 0.0,
                     "events": events[:SWITCHES_CAP]},
        "cdf": {"ttft": result.cdf("ttft"), "e2e": result.cdf("e2e")},
        "per_expert": result.per_expert(),
    }


# -- sweeps -----------------------------------------------------------------------------------------------
COMPARED = ("switches", "hbm_hit_rate", "switch_ms_mean", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "e2e_p50_ms",
            "e2e_p99_ms", "throughput_rps", "spilled_experts")


def comparison_table(runs):
    """One row per run (machine, policy, map, status, the COMPARED metrics) plus TTFT p50 relative to the
    first finished run, so 'SN40L vs DGX' reads as a ratio."""
    base = next((r.summary.get("ttft_p50_ms") for r in runs if r.status == "done"), None)
    rows = []
    for r in runs:
        p = r.parameters
        ex = p["experts"]
        row = {"run": r.pk, "machine": P.machine_label(p), "policy": p["policy"], "batching": p["batching"],
               "map": f"v{ex['map_version']}" if ex["source"] == "map" else f"{ex['count']} uniform",
               "status": r.status, **{k: r.summary.get(k) for k in COMPARED}}
        ttft = r.summary.get("ttft_p50_ms")
        row["ttft_p50_vs_first"] = ttft / base if ttft is not None and base else None
        rows.append(row)
    return rows


def finish_sweep(sweep_id):
    """Chord callback: store the comparison table and mark the sweep done (failed if every run failed)."""
    runs = list(SimulationRun.objects.filter(sweep_id=sweep_id).defer("outputs").order_by("id"))
    status = "done" if any(r.status == "done" for r in runs) else "failed"
    table = comparison_table(runs)
    updated = Sweep.objects.filter(pk=sweep_id).exclude(status__in=("done", "failed")).update(
        status=status, comparison=table, finished_at=timezone.now())
    if updated:
        publish("hwsim", "hwsim.sweep", {"sweep": sweep_id, "status": status})
    return status


# -- reference tables -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def validation_table():
    """The engine's validation rows and CoE latency report (pure and deterministic: computed once)."""
    return validate(), coe_latency_report()
