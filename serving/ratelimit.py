"""Per-user limits in fixed one-minute windows (requests, and the tokens they ask for), counted in the shared cache
(Redis when configured), so every web process enforces one limit together. If the cache is unreachable the request
is let through (and logged): a Redis restart must not take the endpoint down with it.

All of a request's limits are counted in one round trip: with Redis, one MULTI/EXEC of ``SET NX EX`` (start the
window) and ``INCRBY`` per counter; other caches (LocMem: embedded mode, one process) count with add and incr. The
cache backend is one instance per process, so its connection pool lives as long as the process (Django's ``cache``
is one instance per request context under ASGI: a new connection per call).
"""
import logging
import threading
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed

log = logging.getLogger(__name__)
WINDOW_TTL_S = 90  # a minute's counter outlives its minute, never the next one


def check(limits):
    """Count each limit, ``(key, per_minute, cost)`` — ``cost`` the request's weight (1, or the tokens it asks
    for); ``key`` e.g. "user:<pk>" (never a secret: cache keys show up in tools and logs); ``per_minute`` <= 0 turns
    that limit off (nothing counted). Returns, in the same order, 0 for each limit still within bounds, else the
    seconds until the window resets. Refused requests count too: a client at its limit stays there until the minute
    ends, whichever limit refused it."""
    now = time.time()
    window = int(now // 60)
    active = [(i, f"ratelimit:{key}:{window}", cost) for i, (key, per_minute, cost) in enumerate(limits)
              if per_minute > 0]
    answers = [0] * len(limits)
    if not active:
        return answers
    try:
        counts = count(counters(), [(name, cost) for _, name, cost in active])
    except Exception:
        log.warning("rate limit not checked: the cache is unreachable", exc_info=True)
        return answers
    for (i, _, _), total in zip(active, counts):
        if total > limits[i][1]:
            answers[i] = max(1, int(60 - now % 60) + 1)
    return answers


def count(backend, items):
    """Add each ``(name, cost)`` to its counter, creating it (expiring after WINDOW_TTL_S) if needed; the totals."""
    if isinstance(backend, RedisCache):
        pipe = backend._cache.get_client(write=True).pipeline(transaction=True)
        for name, cost in items:
            key = backend.make_and_validate_key(name)
            pipe.set(key, 0, ex=WINDOW_TTL_S, nx=True)
            pipe.incrby(key, cost)
        return pipe.execute()[1::2]  # atomic: the counter cannot expire between its SET and its INCRBY
    totals = []
    for name, cost in items:
        backend.add(name, 0, timeout=WINDOW_TTL_S)
        try:
            totals.append(backend.incr(name, cost))
        except ValueError:  # expired between add and incr: this request starts the window
            backend.set(name, cost, timeout=WINDOW_TTL_S)
            totals.append(cost)
    return totals


_backend = {"cache": None}
_lock = threading.Lock()


def counters():
    """This process's instance of the default cache."""
    with _lock:
        if _backend["cache"] is None:
            _backend["cache"] = caches.create_connection("default")
        return _backend["cache"]


def _reset(*, setting, **kwargs):
    if setting == "CACHES":
        with _lock:
            _backend["cache"] = None


setting_changed.connect(_reset)  # tests point the cache at their own redis-server
