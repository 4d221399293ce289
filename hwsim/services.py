"""Writes for the simulator: create runs and sweeps, execute a run with live progress, store compacted
outputs and the downloads, close a sweep with its comparison table, and the reconciler.  The live twin lives in
twin.py.

Runs are pending work in the database; the messages (coe_site.jobs, tasks by name) only wake workers. A worker
claims a run with a conditional UPDATE (queued → running, or running with a stale claim), renews the claim as it
progresses, and writes its result guarded by its claim token, so a duplicate delivery does nothing and a worker
presumed dead writes nothing. The run that ends last closes its sweep; the reconciler wakes workers for runs
whose message or worker was lost and closes sweeps, whatever became of any message.
"""
import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from coe_site import jobs
from coe_site.errors import OUTAGE
from coe_site.realtime import publish
from hwsim.engine import ConfigError, coe_latency_report, simulate, validate

from . import exports
from . import parameters as P
from .models import FINAL, SimulationRun, Sweep

log = logging.getLogger(__name__)
OWNERS_CAP = 12  # owners drawn per tier; the rest fold into "other experts"
SWITCHES_CAP = 500  # switch events kept per run (the count and means cover all of them)
PROGRESS_EVERY_S = 0.25
RUN_TASK = "hwsim.run_simulation"
EXPORT_TASK = "hwsim.write_exports"


class ClaimLost(RuntimeError):
    """Another worker took this run over (our claim went stale): stop, write nothing."""


def stale_after():
    """Seconds without a sign of life after which a claim is taken over (HWSIM_RUN_STALE_S, default 600)."""
    return settings.HWSIM_RUN_STALE_S


def queue_name(queue=None):
    """The queue simulations go to: the caller's, else settings.HWSIM_CELERY_QUEUE (optional: lets a
    deployment keep CPU-heavy simulations on their own workers), else Celery's default."""
    return queue or settings.HWSIM_CELERY_QUEUE


# -- creating ---------------------------------------------------------------------------------------------
def create_run(*, raw, user=None, queue=None):
    """Validate the parameters, store a queued run and wake a worker once the transaction commits."""
    params = P.normalise(raw)
    with transaction.atomic():
        run = SimulationRun.objects.create(name=P.describe(params), parameters=params, created_by=user,
                                           progress_total=P.request_count(params), queued_at=timezone.now(),
                                           exports_status="pending")
        jobs.enqueue(RUN_TASK, run.pk, queue=queue_name(queue))
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


def create_sweep(*, raw, machines=(), policies=(), maps=(), user=None, queue=None, name=""):
    """Validate every combination first (all or nothing), store them, and wake a worker per run on commit."""
    grid = sweep_grid(raw, machines, policies, maps)
    if len(grid) < 2:
        raise ConfigError("a comparison needs at least two combinations (pick two machines, policies or maps)")
    if len(grid) > 48:
        raise ConfigError(f"{len(grid)} combinations is more than the 48 a sweep may hold")
    with transaction.atomic():
        sweep = Sweep.objects.create(name=name or f"{len(grid)} runs · {P.describe(grid[0])}", created_by=user)
        runs = SimulationRun.objects.bulk_create([
            SimulationRun(name=P.describe(p), parameters=p, progress_total=P.request_count(p), sweep=sweep,
                          created_by=user, queued_at=timezone.now(), exports_status="pending") for p in grid])
        for run in runs:  # bulk_create sets pks on PostgreSQL and SQLite
            jobs.enqueue(RUN_TASK, run.pk, queue=queue_name(queue))
    return sweep


# -- running ----------------------------------------------------------------------------------------------
def _token():
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim_run(run_id):
    """queued → running, atomically; the claim token, or None when another delivery (or nobody: bad id) has it.

    A run whose claim was not renewed for ``HWSIM_RUN_STALE_S`` lost its worker and is claimed again."""
    now = timezone.now()
    stale = now - timedelta(seconds=stale_after())
    token = _token()
    claimed = (SimulationRun.objects.filter(pk=run_id)
               .filter(Q(status="queued") | Q(status="running", claimed_at__lt=stale)
                       | Q(status="running", claimed_at__isnull=True, started_at__lt=stale))
               .update(status="running", claimed_by=token, claimed_at=now, started_at=now, error=""))
    return token if claimed else None


def _renewer(run_id, token):
    """renew(**fields): store `fields` and renew the claim; raises ClaimLost once another worker holds the run."""
    def renew(**fields):
        if not SimulationRun.objects.filter(pk=run_id, claimed_by=token).update(claimed_at=timezone.now(),
                                                                                **fields):
            raise ClaimLost(run_id)
    return renew


def _progress_event(run_id, done, total, status):
    return {"run": run_id, "done": done, "total": total, "status": status,
            "pct": 100 if status == "done" else int(100 * done / total) if total else 0}


def execute_run(run_id, token=None):
    """Claim (unless `token` already holds it) and simulate one run, storing progress as it goes, then its
    outputs and downloads; returns "done", "failed", "lost" (taken over meanwhile) or None (not ours to run).
    Bad parameters or data mark the run failed with the reason; an outage propagates (the task retries)."""
    token = token or claim_run(run_id)
    if token is None:
        return None
    run = SimulationRun.objects.defer("outputs").get(pk=run_id)
    renew = _renewer(run_id, token)
    last = [0.0]

    def progress(done, total):
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        renew(progress_done=done, progress_total=total)
        publish("hwsim", "hwsim.progress", _progress_event(run_id, done, total, "running"))

    try:
        config, workload = P.build(run.parameters)
        total = len(workload)
        publish("hwsim", "hwsim.progress", _progress_event(run_id, 0, total, "running"))
        result = simulate(config, workload, progress=progress, every=max(200, total // 100))
        summary, outputs = result.summary(), compact_outputs(result)
    except ClaimLost:
        return "lost"
    except ConfigError as exc:
        return _fail(run_id, token, str(exc))
    except OUTAGE:
        raise
    except Exception as exc:  # stored for the user; the traceback goes to the log
        log.exception("simulation run %s failed", run_id)
        return _fail(run_id, token, f"internal error: {type(exc).__name__}: {exc}")
    try:
        status, error = _write_exports(run_id, token, result, renew)
    except ClaimLost:
        exports.discard_claim(run_id, token)
        return "lost"
    won = SimulationRun.objects.filter(pk=run_id, status="running", claimed_by=token).update(
        status="done", summary=summary, outputs=outputs, progress_done=total, progress_total=total,
        finished_at=timezone.now(), exports_status=status, exports_error=error,
        exports_token=token if status == "ready" else "")
    if not won:
        exports.discard_claim(run_id, token)
        return "lost"
    exports.discard(run_id, keep=token)  # what a writer that lost its claim left behind
    publish("hwsim", "hwsim.progress", {**_progress_event(run_id, total, total, "done"), "summary": summary})
    close_sweep_if_complete(run.sweep_id)
    return "done"


def _write_exports(run_id, token, result, renew):
    """Write the downloads; ("ready", "") or ("failed", reason). Only an outage or a lost claim propagates: the
    simulation's results stand even when its downloads could not be written (they can be prepared again)."""
    try:
        exports.write(run_id, token, result, renew)
    except (ClaimLost, *OUTAGE):
        raise
    except Exception as exc:
        log.exception("writing the downloads of run %s failed", run_id)
        exports.discard_claim(run_id, token)
        return "failed", f"{type(exc).__name__}: {exc}"
    return "ready", ""


def _fail(run_id, token, message):
    if SimulationRun.objects.filter(pk=run_id, claimed_by=token, status="running").update(
            status="failed", error=message, finished_at=timezone.now(), exports_status=""):
        publish("hwsim", "hwsim.progress", {**_progress_event(run_id, 0, 0, "failed"), "error": message})
        close_sweep_if_complete(SimulationRun.objects.values_list("sweep_id", flat=True).get(pk=run_id))
    return "failed"


def rerun(run):
    """The full engine result of a stored run, recomputed (runs are seeded). Only workers call it (the export job,
    benchmarks): a web request never does."""
    config, workload = P.build(run.parameters)
    return simulate(config, workload)


# -- downloads of runs that finished before they were stored ----------------------------------------------
def request_exports(*, run):
    """Ask a worker to write the downloads of a finished run that has none (or whose writing failed); True when
    this call queued them (a second request, or one for a run that has them, does nothing)."""
    with transaction.atomic():
        queued = SimulationRun.objects.filter(pk=run.pk, status="done", exports_status__in=("", "failed")).update(
            exports_status="pending", exports_error="", claimed_by="", queued_at=timezone.now())
        if queued:
            jobs.enqueue(EXPORT_TASK, run.pk, queue=queue_name())
    return bool(queued)


def claim_exports(run_id):
    """Claim the pending downloads of a finished run (unclaimed, or claimed by a worker gone stale); token or None."""
    now = timezone.now()
    stale = now - timedelta(seconds=stale_after())
    token = _token()
    claimed = (SimulationRun.objects.filter(pk=run_id, status="done", exports_status="pending")
               .filter(Q(claimed_by="") | Q(claimed_at__lt=stale))
               .update(claimed_by=token, claimed_at=now))
    return token if claimed else None


def write_exports(run_id, token=None):
    """Claim (unless `token` holds it), re-simulate in this worker and store a finished run's downloads; returns
    "ready", "failed", "lost" or None (nothing to do)."""
    token = token or claim_exports(run_id)
    if token is None:
        return None
    run = SimulationRun.objects.defer("outputs").get(pk=run_id)
    try:
        result = rerun(run)
    except OUTAGE:
        raise
    except Exception as exc:  # e.g. the replayed decisions are gone: the run cannot be reproduced any more
        status, error = "failed", f"the run cannot be simulated again: {type(exc).__name__}: {exc}"
    else:
        try:
            status, error = _write_exports(run_id, token, result, _renewer(run_id, token))
        except ClaimLost:
            exports.discard_claim(run_id, token)
            return "lost"
    won = SimulationRun.objects.filter(pk=run_id, claimed_by=token, exports_status="pending").update(
        exports_status=status, exports_error=error, exports_token=token if status == "ready" else "")
    if not won:
        exports.discard_claim(run_id, token)
        return "lost"
    exports.discard(run_id, keep=token)
    publish("hwsim", "hwsim.exports", {"run": run_id, "status": status, "error": error})
    return status


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
    """Store the comparison table and mark the sweep done (failed if every run failed), once: a conditional
    UPDATE, so the runs that end together and the reconciler may all call it."""
    runs = list(SimulationRun.objects.filter(sweep_id=sweep_id).defer("outputs").order_by("id"))
    status = "done" if any(r.status == "done" for r in runs) else "failed"
    table = comparison_table(runs)
    updated = Sweep.objects.filter(pk=sweep_id).exclude(status__in=FINAL).update(
        status=status, comparison=table, finished_at=timezone.now())
    if updated:
        publish("hwsim", "hwsim.sweep", {"sweep": sweep_id, "status": status})
    return status


def close_sweep_if_complete(sweep_id):
    """After a run of sweep `sweep_id` ended: finish the sweep when none of its runs is left to run."""
    if sweep_id is None or SimulationRun.objects.filter(sweep_id=sweep_id).exclude(status__in=FINAL).exists():
        return None
    return finish_sweep(sweep_id)


# -- the reconciler ---------------------------------------------------------------------------------------
def reconcile_simulations(*, now=None, idle_s=None):
    """Whatever became of their messages: wake a worker for every queued run (and every pending download of a
    finished run) whose last wake-up is older than ``idle_s`` (COE_RECONCILE_IDLE_S), and for every run or download
    whose claim went stale (HWSIM_RUN_STALE_S: its worker died); finish sweeps whose runs have all ended. Counts."""
    now = now or timezone.now()
    idle = now - timedelta(seconds=settings.COE_RECONCILE_IDLE_S if idle_s is None else idle_s)
    stale = now - timedelta(seconds=stale_after())
    forgotten = Q(queued_at__isnull=True) | Q(queued_at__lt=idle)
    runs = list(SimulationRun.objects.filter(
        Q(status="queued") & forgotten | Q(status="running", claimed_at__lt=stale)
        | Q(status="running", claimed_at__isnull=True, started_at__lt=stale)).values_list("pk", flat=True))
    downloads = list(SimulationRun.objects.filter(status="done", exports_status="pending").filter(
        Q(claimed_by="") & forgotten | Q(claimed_at__lt=stale)).values_list("pk", flat=True))
    SimulationRun.objects.filter(pk__in=runs + downloads).update(queued_at=now)
    for pk in runs:
        jobs.send(RUN_TASK, pk, queue=queue_name())
    for pk in downloads:
        jobs.send(EXPORT_TASK, pk, queue=queue_name())
    open_sweeps = Sweep.objects.exclude(status__in=FINAL).exclude(runs__status__in=("queued", "running"))
    finished = [finish_sweep(pk) for pk in open_sweeps.values_list("pk", flat=True).distinct()]
    return {"runs_woken": len(runs), "downloads_woken": len(downloads), "sweeps_finished": len(finished)}


# -- reference tables -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def validation_table():
    """The engine's validation rows and CoE latency report (pure and deterministic: computed once)."""
    return validate(), coe_latency_report()
