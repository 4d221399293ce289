"""The live twin: an engine Simulator fed with the routed decision stream, in id order, so the twin page
shows which experts the real traffic keeps in HBM right now.

Each tick reads the decisions after the stored position, feeds them (arrival = seconds since the first
decision of the current window), advances the simulator to the present and stores the snapshot with a
conditional UPDATE on (generation, ticks, position): a duplicate or stale delivery changes nothing, and only
the tick that won schedules the next one (coe_site.jobs with a countdown, in both modes).  Each tick message names
the tick count it expects, so a redelivered or re-sent message whose tick already ran does nothing and one chain
of ticks survives.  A lost message would stop the chain: the reconciler (reconcile_twin) sends a tick when the last
one is older than a few tick intervals.  The Simulator itself stays in the worker process between ticks;
a process that finds its copy out of date (another worker ran the last tick, or it restarted) rebuilds it by
replaying the current window, which is at most WINDOW decisions long.  A window also restarts when a
decision names an expert the simulator does not know (the pool changed).
"""
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from coe_site import jobs
from coe_site.realtime import publish
from hwsim.engine import ConfigError, SimConfig, Simulator, expert_from_dict

from . import parameters as P
from . import selectors
from .models import LiveTwin
from .services import queue_name

WINDOW = 5000  # decisions per simulator window
TICK_BATCH = 2000  # decisions consumed per tick at most
HISTORY_CAP = 120  # occupancy points kept for the page's chart
TICK_SECONDS = 2.0
TICK_LATE_S = 5 * TICK_SECONDS  # no tick won for this long: the reconciler sends one
TICK_TASK = "hwsim.live_twin_tick"
TWIN_POLICIES = ("lru", "lfu")  # pinned needs a hot set and belady the future: neither exists for a live stream


@dataclass
class _State:
    key: tuple  # (generation, window_start, position) this simulator has consumed
    sim: Simulator
    origin: object  # created_at of the window's first decision (None while the window is empty)
    last_arrival: float = 0.0


_states: dict = {}
_lock = threading.Lock()


def normalise(raw):
    """Twin parameters: machine, policy (lru or lfu), batching, batch size, output tokens per request."""
    if not isinstance(raw, dict):
        raise ConfigError("twin parameters must be an object")
    machine, _ = P.resolve_machine(raw.get("machine") or {})
    params = {"machine": machine, "policy": raw.get("policy", "lru"), "batching": raw.get("batching", "coe"),
              "batch_size": P.checked_number(raw.get("batch_size", 8), "batch size", 1, integer=True),
              "output_tokens": P.checked_number(raw.get("output_tokens", 128), "output tokens", 1, integer=True)}
    if params["policy"] not in TWIN_POLICIES:
        raise ConfigError(f"the live twin supports policies {', '.join(TWIN_POLICIES)}, not {params['policy']!r}")
    _config(params).layout()
    return params


def _config(params):
    experts = [expert_from_dict(e) for e in selectors.pool_experts()]
    if not experts:
        raise ConfigError("the expert pool is empty")
    return SimConfig(P.machine_of(params), experts, policy=params["policy"], batching=params["batching"],
                     batch_size=params["batch_size"], snapshot_cap=P.SNAPSHOT_CAP)


def start(*, raw, user=None):
    """Enable the twin from the newest decision on (a new generation) and send its first tick on commit."""
    params = normalise(raw)
    with transaction.atomic():
        twin, _ = LiveTwin.objects.select_for_update().get_or_create(name="default")
        position = selectors.latest_decision_id()
        twin.enabled, twin.generation, twin.parameters = True, twin.generation + 1, params
        twin.position = twin.window_start = position
        twin.snapshot, twin.history, twin.error, twin.ticked_at = {}, [], "", timezone.now()
        twin.save()
        jobs.enqueue(TICK_TASK, twin.pk, twin.generation, twin.ticks, queue=queue_name())
    return twin


def stop():
    LiveTwin.objects.filter(name="default").update(enabled=False)


def schedule(twin_id, generation, ticks, queue=None):
    """Send the tick that follows tick number `ticks`, TICK_SECONDS from now."""
    jobs.send(TICK_TASK, twin_id, generation, ticks, queue=queue_name(queue), countdown=TICK_SECONDS)


def reconcile_twin(*, now=None):
    """Send a tick to every enabled twin whose last tick is older than TICK_LATE_S (its tick message was lost, or
    its worker died): the twin keeps ticking whatever became of a message. Counts."""
    now = now or timezone.now()
    late = list(LiveTwin.objects.filter(enabled=True).filter(
        Q(ticked_at__isnull=True) | Q(ticked_at__lt=now - timedelta(seconds=TICK_LATE_S)))
        .values_list("pk", "generation", "ticks"))
    for pk, generation, ticks in late:
        jobs.send(TICK_TASK, pk, generation, ticks, queue=queue_name())
    return {"twins_woken": len(late)}


def _records(state, rows, output_tokens):
    records = []
    for _, created, _, expert, chars in rows:
        if expert is None:
            continue
        state.origin = state.origin or created
        arrival = max(state.last_arrival, state.sim.now, (created - state.origin).total_seconds())
        state.last_arrival = arrival
        records.append({"arrival": arrival, "expert": expert, "output_tokens": output_tokens,
                        "prompt_tokens": max(1, round((chars or 0) / P.CHARS_PER_TOKEN))})
    return records


def _advance(state, output_tokens, rows):
    state.sim.feed(_records(state, rows, output_tokens))
    if state.origin is not None:
        state.sim.advance(until=max(state.sim.now, (timezone.now() - state.origin).total_seconds()))


def _fresh(twin, window_start):
    return _State((twin.generation, window_start, window_start), Simulator(_config(twin.parameters)), None)


def _rebuild(twin):
    state = _fresh(twin, twin.window_start)
    rows = list(selectors.decisions_in_range(twin.window_start + 1, twin.position))
    _advance(state, twin.parameters["output_tokens"], rows)
    state.key = (twin.generation, twin.window_start, twin.position)
    return state


def _history_point(snap):
    hbm = snap["hbm"]
    return {"t": snap["t"], "at": snap["at"], "router": hbm["router"], "kv": hbm["kv"],
            "experts": sum(hbm["experts"].values()), "free": hbm["free"], "capacity": hbm["capacity"]}


def tick(twin_id, generation, expect=None):
    """Consume new decisions once; the new tick count when this delivery won the update (and should schedule the
    next), else None. `expect`: the tick count the message was sent for (None: whatever it is now)."""
    twin = LiveTwin.objects.filter(pk=twin_id).first()
    if twin is None or not twin.enabled or twin.generation != generation or expect not in (None, twin.ticks):
        return None
    with _lock:
        try:
            won = _tick(twin)
        except ConfigError as exc:
            LiveTwin.objects.filter(pk=twin.pk, generation=generation).update(enabled=False, error=str(exc))
            _states.pop(twin.pk, None)
            return None
    return twin.ticks + 1 if won else None


def _tick(twin):
    state = _states.get(twin.pk)
    if state is None or state.key != (twin.generation, twin.window_start, twin.position):
        state = _rebuild(twin)
    rows = selectors.decisions_after(twin.position, TICK_BATCH)
    window_start = twin.window_start
    known = set(state.sim.names)
    if rows and (len(state.sim.arrival) + len(rows) > WINDOW or any(r[3] and r[3] not in known for r in rows)):
        window_start = twin.position
        state = _fresh(twin, window_start)
    _advance(state, twin.parameters["output_tokens"], rows)
    position = rows[-1][0] if rows else twin.position
    snap = {**state.sim.snapshot(), "at": timezone.now().isoformat(), "position": position,
            "window_start": window_start, "machine": P.machine_label(twin.parameters),
            "policy": twin.parameters["policy"]}
    history = (twin.history + [_history_point(snap)])[-HISTORY_CAP:]
    won = LiveTwin.objects.filter(pk=twin.pk, enabled=True, generation=twin.generation, ticks=twin.ticks,
                                  position=twin.position).update(
        ticks=F("ticks") + 1, position=position, window_start=window_start, snapshot=snap, history=history,
        ticked_at=timezone.now())
    if not won:
        _states.pop(twin.pk, None)
        return False
    state.key = (twin.generation, window_start, position)
    _states[twin.pk] = state
    publish("hwsim", "hwsim.twin", snap)
    return True
