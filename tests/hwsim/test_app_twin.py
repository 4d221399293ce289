"""The live twin consumes routed decisions in id order, idempotently, and publishes its occupancy."""
import pytest

from hwsim import twin
from hwsim.models import LiveTwin

pytestmark = pytest.mark.django_db

PROMPTS = ["Write a Rust function that reverses a singly linked list in place.",
           "Solve for x: 3x + 7 = 22.", "Write a short poem about autumn rain.",
           "Extract the dates from: met on 3 May, paid on 9 June."]


def test_the_twin_consumes_new_decisions_and_publishes_occupancy(active_router, eager, hwsim_events,
                                                                 django_capture_on_commit_callbacks):
    from routing.services import route_prompts

    route_prompts(PROMPTS[:1], "api")  # before the twin starts: not consumed
    with django_capture_on_commit_callbacks(execute=True):
        state = twin.start({"machine": {"preset": "sn40l-8"}, "policy": "lru"})
    state.refresh_from_db()
    assert state.enabled and state.ticks == 1 and state.snapshot["fed"] == 0
    decisions = route_prompts(PROMPTS, "api")
    with django_capture_on_commit_callbacks(execute=True):
        assert twin.tick(state.pk, state.generation) is True
    state.refresh_from_db()
    snap = state.snapshot
    assert state.position == decisions[-1]["id"] and snap["fed"] == len(PROMPTS)
    assert set(snap["hbm"]["experts"]) <= {d["expert"] for d in decisions}
    assert snap["hbm"]["experts"]  # something was switched in
    assert snap["hbm"]["free"] + snap["hbm"]["router"] + snap["hbm"]["kv"] + sum(snap["hbm"]["experts"].values()) \
        == pytest.approx(snap["hbm"]["capacity"])
    published = [d for e, d in hwsim_events() if e == "hwsim.twin"]
    assert published and published[-1]["position"] == state.position
    assert len(state.history) == 2


def test_a_duplicate_or_stale_tick_changes_nothing(active_router, eager, django_capture_on_commit_callbacks):
    from routing.services import route_prompts

    with django_capture_on_commit_callbacks(execute=True):
        state = twin.start({})
    route_prompts(PROMPTS, "api")
    stale = LiveTwin.objects.get(pk=state.pk)  # a second delivery that read the row before the first won
    assert twin.tick(state.pk, stale.generation) is True
    after = LiveTwin.objects.get(pk=state.pk)
    with twin._lock:
        assert twin._tick(stale) is False
    assert LiveTwin.objects.get(pk=state.pk).ticks == after.ticks
    assert twin.tick(state.pk, after.generation - 1) is False  # a tick from an earlier start
    twin.stop()
    assert twin.tick(state.pk, after.generation) is False


def test_a_new_process_rebuilds_the_same_state(active_router, eager, django_capture_on_commit_callbacks):
    from routing.services import route_prompts

    with django_capture_on_commit_callbacks(execute=True):
        state = twin.start({"policy": "lfu"})
    route_prompts(PROMPTS, "api")
    twin.tick(state.pk, state.generation)
    kept = LiveTwin.objects.get(pk=state.pk).snapshot
    twin._states.clear()  # as if the next tick ran in another worker
    route_prompts(PROMPTS[:2], "api")
    assert twin.tick(state.pk, state.generation) is True
    snap = LiveTwin.objects.get(pk=state.pk).snapshot
    assert snap["fed"] == len(PROMPTS) + 2 and snap["switches"] >= kept["switches"]


def test_the_twin_refuses_policies_that_need_the_future():
    from hwsim.engine import ConfigError

    with pytest.raises(ConfigError, match="lru, lfu"):
        twin.start({"policy": "belady"})
