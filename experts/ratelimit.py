"""Per-user request limits in fixed one-minute windows, counted in the shared cache (Redis when configured), so
every web process enforces one limit together. If the cache is unreachable the request is let through (and logged):
a Redis restart must not take the endpoint down with it."""
import logging
import time

from django.core.cache import cache

log = logging.getLogger(__name__)


def check(key, per_minute, cost=1):
    """Count ``cost`` (one request, or the tokens it asks for) for ``key`` (e.g. "user:<pk>": never a secret, cache
    keys show up in tools and logs); return 0 when allowed, else the seconds until the window resets."""
    if per_minute <= 0:
        return 0
    now = time.time()
    window = int(now // 60)
    name = f"ratelimit:{key}:{window}"
    try:
        cache.add(name, 0, timeout=90)
        try:
            count = cache.incr(name, cost)
        except ValueError:  # expired between add and incr: this request starts the window
            cache.set(name, cost, timeout=90)
            count = cost
    except Exception:
        log.warning("rate limit not checked: the cache is unreachable", exc_info=True)
        return 0
    return 0 if count <= per_minute else max(1, int(60 - now % 60) + 1)
