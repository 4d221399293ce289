"""The dashboard's serving numbers, from ExpertCall rows and cached breaker snapshots made here by hand."""
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from experts.models import Expert

from serving.models import ExpertCall
from experts.backend_registry import merged_breakers
from serving.selectors import percentile, serving_snapshot

A, B = "qwen2-72b-instruct", "gemma-2-9b-it"


def call(status, primary, expert=None, ttft=None, total=None):
    experts = {e.name: e for e in Expert.objects.filter(name__in=[primary, expert or primary])}
    return ExpertCall.objects.create(requested_model="coe", primary=experts[primary],
                                     expert=experts.get(expert) if status != "error" else None, status=status,
                                     ttft_ms=ttft, total_ms=total, simulated=True,
                                     fallback_reason="timeout" if status in ("fallback", "error") else "")


@pytest.fixture
def breaker_cache():
    keys = ["breakers:index", "breakers:p1", "breakers:p2"]
    yield
    cache.delete_many(keys)


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([5], 0.95) == 5
    assert percentile([2, 1], 0.5) == 1
    assert (percentile(range(1, 11), 0.5), percentile(range(1, 11), 0.95)) == (5, 10)
    assert percentile(list(range(1, 101)), 0.95) == 95


@pytest.mark.django_db
def test_per_expert_numbers_and_fallbacks_count_against_the_chosen_expert():
    for i in range(1, 5):
        call("ok", A, A, ttft=10.0 * i, total=100.0 * i)
    call("error", A, total=900.0)  # not answered: no latency, an error of A
    call("fallback", A, B, ttft=50.0, total=500.0)  # B answered for A: an error (and a fallback) of A
    call("aborted", A, A, ttft=5.0)  # the client left: neither an error nor a finished answer
    call("ok", B, B, ttft=7.0, total=70.0)
    old = call("error", B)
    ExpertCall.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))  # outside window

    s = serving_snapshot(window_s=900)
    experts = {e["name"]: e for e in s["experts"]}
    a, b = experts[A], experts[B]
    assert (a["calls"], a["errors"], a["fallbacks"], a["aborted"], a["answered"]) == (7, 2, 1, 1, 4)
    assert a["error_rate"] == pytest.approx(2 / 7)
    assert (a["ttft_p50"], a["ttft_p95"], a["total_p50"], a["total_p95"]) == (20.0, 40.0, 200.0, 400.0)
    assert (b["calls"], b["errors"], b["error_rate"], b["answered"], b["answered_for_others"]) == (1, 0, 0.0, 2, 1)
    assert (b["ttft_p50"], b["ttft_p95"], b["total_p50"], b["total_p95"]) == (7.0, 50.0, 70.0, 500.0)
    idle = experts["qwen2-7b-instruct"]
    assert (idle["calls"], idle["error_rate"], idle["ttft_p50"], idle["simulated"]) == (0, None, None, True)

    assert len(s["calls"]) == 8 and not s["truncated"]
    newest = s["calls"][0]
    assert (newest["expert"], newest["primary"], newest["status"]) == (B, B, "ok")
    unanswered = next(c for c in s["calls"] if c["status"] == "error")
    assert unanswered["expert"] == A  # like the live items: who was chosen when nobody answered
    fallback = next(c for c in s["calls"] if c["status"] == "fallback")
    assert (fallback["expert"], fallback["primary"], fallback["fallback_reason"]) == (B, A, "timeout")


@pytest.mark.django_db
def test_call_list_is_capped_but_reports_truncation():
    for _ in range(3):
        call("ok", A, A, ttft=1.0, total=2.0)
    s = serving_snapshot(max_calls=2)
    assert len(s["calls"]) == 2 and s["truncated"]


def test_the_process_index_expires_and_forgets_processes_whose_snapshot_expired(breaker_cache, monkeypatch):
    from types import SimpleNamespace

    from experts import backend_registry

    cache.set("breakers:index", ["p1", "gone"])  # "gone" exited: its snapshot expired
    cache.set("breakers:p1", {"at": time.time(), "experts": {}})
    timeouts = {}

    def set_(key, value, timeout):
        timeouts[key] = timeout
        cache.set(key, value, timeout)

    monkeypatch.setattr(backend_registry, "cache", SimpleNamespace(get=cache.get, get_many=cache.get_many, set=set_))
    monkeypatch.setattr(backend_registry, "_shared", {"states": None, "at": 0.0})
    monkeypatch.setattr(backend_registry, "_board", None)
    backend_registry.breakers().get(A).record_failure()
    backend_registry.share_breakers()
    me = next(k for k in timeouts if k != "breakers:index").removeprefix("breakers:")
    try:
        assert cache.get("breakers:index") == sorted(["p1", me])
        assert timeouts["breakers:index"] == backend_registry.BREAKER_TTL_S
    finally:
        cache.delete(f"breakers:{me}")


def test_breakers_merge_every_process_and_the_worst_state_wins(breaker_cache):
    now = time.time()
    cache.set("breakers:index", ["p1", "p2", "gone"])  # "gone": its snapshot expired from the cache
    cache.set("breakers:p1", {"at": now, "experts": {
        A: {"state": "closed", "failures": 1, "retry_in_s": None},
        B: {"state": "open", "failures": 5, "retry_in_s": 30.0}}})
    cache.set("breakers:p2", {"at": now - 100, "experts": {
        A: {"state": "open", "failures": 5, "retry_in_s": 30.0},  # 100 s ago with 30 s to go: half-open by now
        B: {"state": "closed", "failures": 0, "retry_in_s": None}}})
    merged = merged_breakers(now)
    assert merged[A] == {"state": "half_open", "failures": 5, "processes": 2, "states": {"closed": 1, "half_open": 1}}
    assert merged[B] == {"state": "open", "failures": 5, "processes": 2, "states": {"open": 1, "closed": 1}}


@pytest.mark.django_db
def test_dashboard_snapshot_carries_the_serving_panel(breaker_cache, user):
    from dashboard.selectors import dashboard_snapshot

    cache.set("breakers:index", ["p1"])
    cache.set("breakers:p1", {"at": time.time(), "experts": {A: {"state": "open", "failures": 5, "retry_in_s": 9}}})
    call("ok", A, A, ttft=3.0, total=30.0)
    serving = dashboard_snapshot(user)["serving"]
    assert serving["breakers"][A]["state"] == "open"
    assert next(e for e in serving["experts"] if e["name"] == A)["calls"] == 1
