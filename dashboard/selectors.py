"""What the live dashboard shows on (re)connect: routing's decisions and batches with serving's calls and breakers."""
from datetime import timedelta

from django.utils import timezone
from redis.exceptions import RedisError

from access.roles import redact
from experts.selectors import current_map
from routing.selectors import (active_router_row, batch_progress, decisions_since, feed_item, open_batches,
                               recent_decisions)
from serving.selectors import serving_snapshot


def dashboard_snapshot(user, window_s=60, feed=50, max_rows=20000):
    """What the dashboard shows ``user``, from the database: the page loads it on (re)connect to catch up. Prompt
    text and batch names of other users are blanked unless ``user`` may see all traffic (access.roles.redact).

    ``seconds``: per-second counts over the last ``window_s`` seconds (per expert, per category, fallbacks);
    ``latencies``: routing latency of the newest decisions; ``feed``: newest decisions first; ``serving``: how the
    experts answered lately and their circuit breakers (serving.selectors). The breakers are read from the
    shared cache: while it (Redis) is down, ``serving`` is empty with ``unavailable`` saying why, and the rest still
    answers (the page shows a banner). A database outage raises (the API answers 503).
    """
    now = timezone.now()
    since = now - timedelta(seconds=window_s)
    rows = list(decisions_since(since).order_by("-id")
                .values_list("created_at", "expert__name", "category", "fallback", "latency_ms")[:max_rows])
    seconds = {}
    for at, expert, category, fallback, _ in rows:
        b = seconds.setdefault(int(at.timestamp()), {"count": 0, "experts": {}, "categories": {}, "fallbacks": 0})
        b["count"] += 1
        b["experts"][expert] = b["experts"].get(expert, 0) + 1
        b["categories"][category] = b["categories"].get(category, 0) + 1
        b["fallbacks"] += fallback
    recent = recent_decisions(feed)
    snapshot = current_map()
    router = active_router_row()
    active = open_batches()
    return {
        "t": now.timestamp(),
        "window_s": window_s,
        "seconds": [{"t": t, **b} for t, b in sorted(seconds.items())],
        "latencies": [round(r[4], 3) for r in rows[:500]],
        "feed": redact([feed_item(d, d.expert.name if d.expert else None, t=d.created_at.timestamp())
                        for d in recent], user),
        "batches": redact([batch_progress(b) for b in active.order_by("id")[:50]], user, fields=("name",)),
        "queued": sum(b.total - b.done for b in active.only("total", "done")),
        "experts": sorted(snapshot.expert_ids) if snapshot else [],
        "map_version": snapshot.version if snapshot else None,
        "router_version": router.version if router else None,
        "serving": _serving_or_unavailable(),
    }


def _serving_or_unavailable():
    try:
        return serving_snapshot()
    except RedisError as exc:
        return {"t": timezone.now().timestamp(), "window_s": 900, "experts": [], "breakers": {}, "calls": [],
                "truncated": False, "unavailable": f"the shared cache (Redis) is unreachable: {exc}"}
