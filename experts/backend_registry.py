"""Expert rows → live backend objects (one per expert and configuration, per process) and the breaker board.

Why cache: a transformers backend holds its loaded model (freed once no backend holds it), so a backend per request
would load the model each time; the other kinds are cheap to build, and OpenAI-compatible ones share one pooled HTTP
client per event loop whatever the cache. The key includes every setting, so an edit (admin, page or
``PATCH /api/experts/<name>``) takes effect on the next call without a restart; the superseded backend is dropped, and
its model with it unless another backend (the new one, another expert's) uses the same. API keys are read from the
environment at that moment and never stored.
"""
import dataclasses
import json
import logging
import os
import threading
import time

from django.conf import settings
from django.core.cache import cache

from .backends import BackendConfig, BackendError, make_backend
from .backends.breaker import BreakerBoard
from .backends.egress import EgressRefused, check_base_url, check_key_env

log = logging.getLogger(__name__)
_lock = threading.Lock()
_backends = {}
_board = None
BREAKER_KEY = "breakers:{}"  # one process's snapshot, by "host:pid"
INDEX_KEY = "breakers:index"  # the processes whose snapshot had not expired when one of them last shared
BREAKER_TTL_S = 120


def config_for(expert):
    """The backend config of ``expert``, after the deployment's outbound rules (checked again here, not only when the
    expert was saved: a row stored before a rule tightened must not reach a host or a secret either)."""
    try:
        key_env = check_key_env(expert.api_key_env, settings.COE_API_KEY_ENV_PREFIX, settings.COE_API_KEY_ENVS)
        if expert.backend == "openai":
            check_base_url(expert.base_url, settings.COE_UPSTREAM_ALLOWED_HOSTS)
    except EgressRefused as exc:
        raise BackendError(f"expert {expert.name!r} is misconfigured (see the server log)", kind="config",
                           detail=str(exc)) from None
    return BackendConfig(
        kind=expert.backend, expert=expert.name, model=expert.upstream_model or expert.model_id,
        base_url=expert.base_url, api_key=os.environ.get(key_env, "") if key_env else "",
        timeout_s=expert.timeout_s, connect_timeout_s=expert.connect_timeout_s,
        first_token_timeout_s=expert.first_token_timeout_s, max_retries=expert.max_retries,
        model_path=expert.model_path, device=expert.device, generation=dict(expert.generation or {}),
        parameters=float(expert.effective_active_parameters), bytes_per_parameter=expert.bytes_per_parameter,
        preset=expert.sim_preset, time_scale=expert.sim_time_scale,
        normal_max_tokens=max(settings.COE_BREAKER_NORMAL_MAX_TOKENS, _default_max_tokens(expert.generation)))


def _default_max_tokens(generation):
    """The answer length the expert's own generation settings ask for (0 when they leave it to the backend)."""
    value = (generation or {}).get("max_tokens") or (generation or {}).get("max_new_tokens") or 0
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def backend_for(expert):
    config = config_for(expert)
    # Every setting but the secret (kept out of the key), canonical: PostgreSQL's jsonb hands dict keys back in its own
    # order, so the same generation settings must give the same key whichever way they were read.
    settings_key = json.dumps({**dataclasses.asdict(config), "api_key": None}, sort_keys=True, default=str)
    key = (expert.name, settings_key, config.api_key)
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            backend = make_backend(config)  # before dropping the superseded one, so that it can adopt its model
            for old in [k for k in _backends if k[0] == expert.name]:
                del _backends[old]
            _backends[key] = backend
    return backend


def breakers():
    """This process's breakers (each process judges the experts it calls, like a client-side load balancer)."""
    global _board
    with _lock:
        if _board is None:
            _board = BreakerBoard(settings.COE_BREAKER_FAILURES, settings.COE_BREAKER_RESET_S)
        return _board


_shared = {"states": None, "at": 0.0}
SHARE_EVERY_S = 10.0


def share_breakers():
    """Store this process's breaker snapshot in the shared cache so the dashboard can show every process's view.

    Written when a breaker's state changes, else at most every SHARE_EVERY_S (it expires after BREAKER_TTL_S): not
    a cache round trip per answer. The index of processes expires likewise and each share drops the processes whose
    snapshot has expired (they exited), so it does not grow with every process that ever ran."""
    snapshot = breakers().snapshot()
    states = {name: (b.get("state"), b.get("failures")) for name, b in snapshot.items()}
    now = time.time()
    if snapshot and (states != _shared["states"] or now - _shared["at"] > SHARE_EVERY_S):
        me = f"{os.uname().nodename}:{os.getpid()}"
        try:
            cache.set(BREAKER_KEY.format(me), {"at": now, "experts": snapshot}, BREAKER_TTL_S)
            others = set(cache.get(INDEX_KEY) or ()) - {me}
            alive = cache.get_many([BREAKER_KEY.format(pid) for pid in others])
            index = [pid for pid in others if BREAKER_KEY.format(pid) in alive]
            cache.set(INDEX_KEY, sorted([*index, me]), BREAKER_TTL_S)
            _shared.update(states=states, at=now)
        except Exception:  # the dashboard's view of breakers may lag; an answer must not fail for it
            log.warning("breaker snapshot not shared: the cache is unreachable", exc_info=True)
    return snapshot


STATE_RANK = {"closed": 0, "half_open": 1, "open": 2}  # merging processes: the worst state wins


def merged_breakers(now=None):
    """{expert: {state, failures, processes, states}} over every process's snapshot still in the cache.

    A snapshot is taken after a call; an ``open`` breaker whose retry time has passed since then has turned
    ``half_open`` (it would let a trial through), so it is reported as such.
    """
    now = time.time() if now is None else now
    ids = cache.get(INDEX_KEY) or []
    snapshots = cache.get_many([BREAKER_KEY.format(pid) for pid in ids]).values()
    out = {}
    for snap in snapshots:
        for name, b in (snap.get("experts") or {}).items():
            state = b.get("state", "closed")
            if state == "open" and b.get("retry_in_s") is not None and snap["at"] + b["retry_in_s"] <= now:
                state = "half_open"
            m = out.setdefault(name, {"state": "closed", "failures": 0, "processes": 0, "states": {}})
            m["processes"] += 1
            m["states"][state] = m["states"].get(state, 0) + 1
            m["failures"] = max(m["failures"], b.get("failures", 0))
            if STATE_RANK.get(state, 0) > STATE_RANK[m["state"]]:
                m["state"] = state
    return out
