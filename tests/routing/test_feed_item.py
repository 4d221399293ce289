"""feed_item: one shape for a decision on the live dashboard, in its live events and in its snapshot's feed."""
import time

from coe_site import realtime
from dashboard.selectors import dashboard_snapshot
from routing.models import RoutingDecision
from routing.selectors import feed_item
from routing.services import route_prompts

KEYS = {"id", "user", "source", "prompt", "category", "confidence", "entropy", "fallback_reason", "expert",
        "latency_ms", "batch"}


def test_the_shape_with_and_without_a_time():
    d = RoutingDecision(id=7, user_id=3, source="api", prompt="x" * 300, category="math", confidence=0.123456,
                        entropy=0.98765, fallback_reason="", latency_ms=1.23456)
    item = feed_item(d, "qwen")
    assert set(item) == KEYS and item["prompt"] == "x" * 120 and item["batch"] is None
    assert (item["confidence"], item["entropy"], item["latency_ms"]) == (0.1235, 0.9877, 1.235)
    assert feed_item(d, "qwen", t=12.5) == {**item, "t": 12.5}


def test_live_event_and_snapshot_feed_carry_the_same_item(active_router, user, monkeypatch,
                                                          django_capture_on_commit_callbacks):
    published = []
    monkeypatch.setattr(realtime.dashboard, "add_decisions", published.extend)
    before = time.time()
    with django_capture_on_commit_callbacks(execute=True):
        routed = route_prompts(prompts=["Solve 2x + 3 = 11 for x."], source="api", user=user)
    [live] = published
    assert live["id"] == routed[0]["id"] and before <= live["t"] <= time.time()  # stamped when it committed
    [fed] = dashboard_snapshot(user)["feed"]
    assert set(live) == set(fed) == KEYS | {"t"}
    assert {k: v for k, v in live.items() if k != "t"} == {k: v for k, v in fed.items() if k != "t"}
