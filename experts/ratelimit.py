"""Per-token request limits in fixed one-minute windows, counted in the shared cache (Redis when configured), so
every web process enforces one limit together."""
import time

from django.core.cache import cache


def check(key, per_minute):
    """Count one request for ``key``; return 0 when allowed, else the seconds until the window resets."""
    if per_minute <= 0:
        return 0
    now = time.time()
    window = int(now // 60)
    name = f"ratelimit:{key}:{window}"
    cache.add(name, 0, timeout=90)
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr: this request starts the window
        cache.set(name, 1, timeout=90)
        count = 1
    return 0 if count <= per_minute else max(1, int(60 - now % 60) + 1)
