"""A run's parameters: normalise and resolve what a user asked for, and build the engine inputs from it.

Parameters are stored fully resolved (the map version number, the exact decision id range a "recent"
replay covers), so running them again gives the same workload and the same result: downloads that need
every request (per-request CSV, Chrome trace) re-simulate instead of storing 100k rows.

Shape (every key optional on input; `normalise` fills the defaults):
    {"machine": {"preset": "sn40l-8", "knobs": {"hbm_bw": 2.0e12}} | {"custom": {...machine dict...}},
     "policy": "lru", "batching": "coe", "batch_size": 8,
     "experts": {"source": "map", "map_version": 3} | {"source": "uniform", "count": 150, "params": 7e9,
                                                        "bytes_per_param": 2.0},
     "workload": {"kind": "synthetic", "requests": 1000, "zipf_s": 1.0, "rate": 0.5,
                  "prompt_mean": 512, "output_mean": 128}
               | {"kind": "replay", "source": "recent", "first_id": 1, "last_id": 900, "count": 900, "rate": None}
               | {"kind": "replay", "source": "batch", "batch_id": 7, "count": 120, "rate": None},
     "output_tokens": 128, "seed": 0}
Replays estimate prompt tokens as prompt characters / 4 and give every request `output_tokens`. With
`rate` None a replay keeps the recorded arrival times (created_at offsets); with a rate it spaces the
decisions 1/rate seconds apart in id order.
"""
from numbers import Real

from hwsim.engine import (BATCHING, POLICIES, ConfigError, SimConfig, expert_from_dict, get_machine,
                          machine_from_dict, replay, synthetic, uniform_experts)

from . import selectors

CHARS_PER_TOKEN = 4
MAX_REQUESTS = 1_000_000
DEFAULT_RATE = 0.5  # arrivals/s: below what one node serves with the default map, so queues stay finite
SNAPSHOT_CAP = 500  # occupancy/residency samples kept per run: enough for a chart, small to store


def checked_number(value, what, minimum=None, integer=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or value != value:
        raise ConfigError(f"{what} must be a number, got {value!r}")
    if integer and value != int(value):
        raise ConfigError(f"{what} must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{what} must be >= {minimum}, got {value!r}")
    return int(value) if integer else float(value)


def _only(data, allowed, what):
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be an object")
    unknown = set(data) - set(allowed)
    if unknown:
        raise ConfigError(f"unknown {what} fields {sorted(unknown)}; allowed: {sorted(allowed)}")


def resolve_machine(spec):
    _only(spec, {"preset", "knobs", "custom"}, "machine")
    if "custom" in spec:
        machine = machine_from_dict(spec["custom"])
        return {"custom": machine.to_dict()}, machine
    preset = spec.get("preset", "sn40l-8")
    knobs = spec.get("knobs") or {}
    if not isinstance(knobs, dict):
        raise ConfigError("machine knobs must be an object of parameter: value")
    machine = get_machine(preset, **knobs)
    return {"preset": preset, "knobs": knobs}, machine


def _experts(spec):
    _only(spec, {"source", "map_version", "count", "params", "bytes_per_param"}, "experts")
    source = spec.get("source", "map")
    if source == "map":
        try:
            number = selectors.map_version_number(spec.get("map_version"))
        except selectors.NoSuchData as exc:
            raise ConfigError(str(exc)) from None
        return {"source": "map", "map_version": number}
    if source == "uniform":
        return {"source": "uniform", "count": checked_number(spec.get("count"), "experts count", 1, integer=True),
                "params": checked_number(spec.get("params"), "expert parameters", 1),
                "bytes_per_param": checked_number(spec.get("bytes_per_param", 2.0), "bytes per parameter", 0.01)}
    raise ConfigError(f"experts source must be 'map' or 'uniform', got {source!r}")


def _workload(spec, requests_default=1000):
    kind = spec.get("kind", "synthetic")
    if kind == "synthetic":
        _only(spec, {"kind", "requests", "zipf_s", "rate", "prompt_mean", "output_mean"}, "synthetic workload")
        return {"kind": "synthetic",
                "requests": checked_number(spec.get("requests", requests_default), "requests", 1, integer=True),
                "zipf_s": checked_number(spec.get("zipf_s", 1.0), "zipf exponent", 0),
                "rate": checked_number(spec.get("rate", DEFAULT_RATE), "arrival rate", 1e-9, allow_none=True),
                "prompt_mean": checked_number(spec.get("prompt_mean", 512), "mean prompt tokens", 1),
                "output_mean": checked_number(spec.get("output_mean", 128), "mean output tokens", 1)}
    if kind != "replay":
        raise ConfigError(f"workload kind must be 'synthetic' or 'replay', got {kind!r}")
    _only(spec, {"kind", "source", "count", "first_id", "last_id", "batch_id", "rate"}, "replay workload")
    rate = checked_number(spec.get("rate"), "replay rate", 1e-9, allow_none=True)
    source = spec.get("source", "recent")
    try:
        if source == "recent":
            if "first_id" in spec and "last_id" in spec:
                first = checked_number(spec["first_id"], "first_id", 0, integer=True)
                last = checked_number(spec["last_id"], "last_id", first, integer=True)
                return {"kind": "replay", "source": "recent", "first_id": first, "last_id": last,
                        "count": checked_number(spec.get("count", last - first + 1), "count", 1, integer=True),
                        "rate": rate}
            count = checked_number(spec.get("count", requests_default), "replay count", 1, integer=True)
            first, last, n = selectors.recent_decision_range(count)
            return {"kind": "replay", "source": "recent", "first_id": first, "last_id": last, "count": n,
                    "rate": rate}
        if source == "batch":
            batch_id = checked_number(spec.get("batch_id"), "batch id", 1, integer=True)
            return {"kind": "replay", "source": "batch", "batch_id": batch_id,
                    "count": selectors.batch_decision_count(batch_id), "rate": rate}
    except selectors.NoSuchData as exc:
        raise ConfigError(str(exc)) from None
    raise ConfigError(f"replay source must be 'recent' or 'batch', got {source!r}")


def normalise(raw):
    """Resolve and validate user parameters (raises ConfigError with a message for the user)."""
    _only(raw, {"machine", "policy", "batching", "batch_size", "experts", "workload", "output_tokens", "seed"},
          "run parameter")
    machine_spec, _ = resolve_machine(raw.get("machine") or {})
    params = {
        "machine": machine_spec,
        "policy": raw.get("policy", "lru"),
        "batching": raw.get("batching", "coe"),
        "batch_size": checked_number(raw.get("batch_size", 8), "batch size", 1, integer=True),
        "experts": _experts(raw.get("experts") or {}),
        "workload": _workload(raw.get("workload") or {}),
        "output_tokens": checked_number(raw.get("output_tokens", 128), "output tokens", 1, integer=True),
        "seed": checked_number(raw.get("seed", 0), "seed", 0, integer=True),
    }
    if params["policy"] not in POLICIES:
        raise ConfigError(f"unknown cache policy {params['policy']!r}; policies: {', '.join(POLICIES)}")
    if params["batching"] not in BATCHING:
        raise ConfigError(f"unknown batching {params['batching']!r}; choose from {', '.join(BATCHING)}")
    n = request_count(params)
    if n > MAX_REQUESTS:
        raise ConfigError(f"{n} requests is more than the {MAX_REQUESTS} a run may simulate")
    build_config(params).layout()  # capacity checks: an over-full home tier is an error here, not later
    return params


def request_count(params):
    wl = params["workload"]
    return wl["requests"] if wl["kind"] == "synthetic" else wl["count"]


def machine_label(params):
    spec = params["machine"]
    return spec["custom"]["name"] if "custom" in spec else spec["preset"] + (" (knobs)" if spec["knobs"] else "")


def describe(params):
    """A one-line name for a run."""
    ex, wl = params["experts"], params["workload"]
    experts = (f"map v{ex['map_version']}" if ex["source"] == "map"
               else f"{ex['count']} x {ex['params'] / 1e9:g}B")
    work = (f"{wl['requests']} req zipf {wl['zipf_s']:g}" if wl["kind"] == "synthetic"
            else f"replay {wl['count']} decisions")
    return f"{machine_label(params)} · {params['policy']}/{params['batching']} · {experts} · {work} · seed {params['seed']}"


def machine_of(params):
    spec = params["machine"]
    return machine_from_dict(spec["custom"]) if "custom" in spec else get_machine(spec["preset"], **spec["knobs"])


def machine_provenance(params):
    """The run's machine parameters with their kind (published, derived, calibrated, assumption, user) and source,
    so a page can say which inputs were calibrated; [] when the stored machine no longer builds."""
    try:
        return machine_of(params).provenance()
    except (ConfigError, KeyError, TypeError):
        return []


def _expert_list(params):
    """(engine ExpertSpec list, the map version's MapSnapshot, or None for uniform experts)."""
    ex = params["experts"]
    if ex["source"] == "uniform":
        return uniform_experts(ex["count"], ex["params"], ex["bytes_per_param"]), None
    snapshot, specs = selectors.map_experts(ex["map_version"])
    if not specs:
        raise ConfigError(f"map version {ex['map_version']} assigns no experts")
    return [expert_from_dict(s) for s in specs], snapshot


def build_config(params, experts=None):
    if experts is None:
        experts, _ = _expert_list(params)
    return SimConfig(machine_of(params), experts, policy=params["policy"], batching=params["batching"],
                     batch_size=params["batch_size"], snapshot_cap=SNAPSHOT_CAP)


def decision_expert(category, expert_name, snapshot, names, prompt=None):
    """The engine expert a routed decision runs on: it goes through the run's map as routing would send it
    (MapSnapshot.expert_for: the 'general' fallback, and a traffic split decided by its `prompt`), so the same
    traffic can be replayed on another map version."""
    name = snapshot.expert_for(category, "general", prompt)[0] or expert_name
    if name not in names:
        raise ConfigError(f"decision category {category!r} maps to {name!r}, which is not in the run's experts")
    return name


def replay_records(rows, snapshot, names, output_tokens, rate=None, origin=None, prompts=None):
    """Engine replay records from decision rows (id, created_at, category, expert name, prompt chars) on a map
    `snapshot` (None: uniform experts); `prompts`: decision id → prompt text, for the map's split categories."""
    if snapshot is None:  # uniform experts: real experts in name order → expert-000, expert-001, …
        real = sorted({r[3] for r in rows if r[3]})
        slot = {name: names[i % len(names)] for i, name in enumerate(real)}
    records = []
    for order, (pk, created, category, expert_name, chars) in enumerate(rows):
        if snapshot is None:
            name = slot.get(expert_name, names[0])
        else:
            name = decision_expert(category, expert_name, snapshot, names, (prompts or {}).get(pk))
        record = {"expert": name, "prompt_tokens": max(1, round((chars or 0) / CHARS_PER_TOKEN)),
                  "output_tokens": output_tokens}
        if rate is None:
            origin = origin or created
            record["arrival"] = max(0.0, (created - origin).total_seconds())
        else:
            record["order"] = order
        records.append(record)
    return records


def build(params):
    """(SimConfig, Workload) for resolved parameters (simulate() pins the hot set for policy 'pinned')."""
    experts, snapshot = _expert_list(params)
    names = [e.name for e in experts]
    wl = params["workload"]
    if wl["kind"] == "synthetic":
        workload = synthetic(wl["requests"], names, rate=wl["rate"], zipf_s=wl["zipf_s"],
                             prompt_mean=wl["prompt_mean"], output_mean=wl["output_mean"], seed=params["seed"])
    else:
        rows = list(selectors.decisions_in_range(wl["first_id"], wl["last_id"]) if wl["source"] == "recent"
                    else selectors.batch_decisions(wl["batch_id"]))
        if not rows:
            raise ConfigError("the replayed decisions no longer exist")
        prompts = None
        if snapshot is not None and snapshot.splits:
            prompts = selectors.prompts_of([r[0] for r in rows if snapshot.serving_category(r[2]) in snapshot.splits])
        workload = replay(replay_records(rows, snapshot, names, params["output_tokens"], wl["rate"],
                                         prompts=prompts), rate=wl["rate"])
    return build_config(params, experts), workload
