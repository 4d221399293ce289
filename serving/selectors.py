"""How the experts have been serving: per-expert latency percentiles, error rates and fallbacks over the last few
minutes of ExpertCall rows, and the circuit breakers of every process merged from the shared cache.

The live dashboard loads this on (re)connect and then folds ``calls``/``breakers`` from websocket summaries in, so
the compact call list here has the same shape as ``answering.call_item`` and the percentiles are nearest-rank,
like the page's.
"""
import math
from datetime import timedelta

from django.utils import timezone

from experts.backend_registry import merged_breakers
from experts.selectors import expert_pool

from .models import ExpertCall

IDLE = {"calls": 0, "errors": 0, "fallbacks": 0, "aborted": 0, "answered": 0, "answered_for_others": 0,
        "error_rate": None, "ttft_p50": None, "ttft_p95": None, "total_p50": None, "total_p95": None}


def expert_calls():
    """Every expert call as a queryset, for other apps to aggregate (metrics)."""
    return ExpertCall.objects.all()


def percentile(values, p):
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def _stats(calls):
    """Per expert name: calls it was chosen for, its errors (a fallback is an error of the chosen expert), and the
    latencies of the answers it gave (its own or as somebody's fallback)."""
    out = {}

    def entry(name):
        return out.setdefault(name, {"calls": 0, "errors": 0, "fallbacks": 0, "aborted": 0, "answered": 0,
                                     "answered_for_others": 0, "ttft": [], "total": []})

    for c in calls:
        chosen = entry(c["primary"])
        chosen["calls"] += 1
        chosen["errors"] += c["status"] in ("error", "fallback")
        chosen["fallbacks"] += c["status"] == "fallback"
        chosen["aborted"] += c["status"] == "aborted"
        if c["status"] in ("ok", "fallback"):
            answerer = entry(c["expert"])
            answerer["answered"] += 1
            answerer["answered_for_others"] += c["expert"] != c["primary"]
            if c["ttft_ms"] is not None:
                answerer["ttft"].append(c["ttft_ms"])
            if c["total_ms"] is not None:
                answerer["total"].append(c["total_ms"])
    for s in out.values():
        ttft, total = s.pop("ttft"), s.pop("total")
        s.update(error_rate=s["errors"] / s["calls"] if s["calls"] else None,
                 ttft_p50=percentile(ttft, 0.5), ttft_p95=percentile(ttft, 0.95),
                 total_p50=percentile(total, 0.5), total_p95=percentile(total, 0.95))
    return out


def serving_snapshot(window_s=900, max_calls=5000):
    """What the dashboard's serving panel shows: ``experts`` (pool order, with backend and per-expert numbers over
    the last ``window_s`` seconds), ``breakers`` (merged), and ``calls`` (newest first, at most ``max_calls``,
    ``truncated`` if there were more) for the page to keep its sliding window."""
    now = timezone.now()
    rows = list(ExpertCall.objects.filter(created_at__gte=now - timedelta(seconds=window_s)).order_by("-id")
                .values_list("id", "created_at", "status", "fallback_reason", "ttft_ms", "total_ms", "simulated",
                             "completion_tokens", "primary__name", "expert__name")[:max_calls + 1])
    calls = [{"id": pk, "expert": expert or primary, "primary": primary, "status": status,
              "fallback_reason": reason, "ttft_ms": ttft, "total_ms": total, "simulated": simulated,
              "tokens": tokens, "t": at.timestamp()}
             for pk, at, status, reason, ttft, total, simulated, tokens, primary, expert in rows[:max_calls]
             if primary]
    stats = _stats(calls)
    experts = [{"name": e.name, "backend": e.backend, "simulated": e.simulated, "enabled": e.enabled,
                **stats.get(e.name, IDLE)}
               for e in expert_pool() if e.enabled or e.name in stats]
    return {"t": now.timestamp(), "window_s": window_s, "experts": experts, "breakers": merged_breakers(),
            "calls": calls, "truncated": len(rows) > max_calls}
