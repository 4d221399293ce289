"""The live twin consumes routed decisions in id order, idempotently, and publishes its occupancy; its ticks
schedule themselves through coe_site.jobs (a redelivered or re-sent tick does nothing), and the reconciler keeps an
enabled twin ticking when a tick message is lost."""
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from hwsim import twin
from hwsim.models import LiveTwin
from hwsim.tasks import live_twin_tick

from .inline_jobs import inline_jobs  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

PROMPTS = ["Write a Rust function that reverses a singly linked list in place.",
           "Solve for x: 3x + 7 = 22.", "Write a short poem about autumn rain.",
           "Extract the dates from: met on 3 May, paid on 9 June."]


def test_the_twin_consumes_new_decisions_and_publishes_occupancy(active_router, inline_jobs, hwsim_events,
                                                                 django_capture_on_commit_callbacks):
    from routing.services import route_prompts

    route_prompts(prompts=PROMPTS[:1], source="api")  # before the twin starts: not consumed
    with django_capture_on_commit_callbacks(execute=True):
        state = twin.start(raw={"machine": {"preset": "sn40l-8"}, "policy": "lru"})
    state.refresh_from_db()
    assert state.enabled and state.ticks == 1 and state.snapshot["fed"] == 0  # the first tick, and only it, ran
    decisions = route_prompts(prompts=PROMPTS, source="api")
    with django_capture_on_commit_callbacks(execute=True):
        assert twin.tick(state.pk, state.generation) == 2
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


def test_a_duplicate_or_stale_tick_changes_nothing(active_router, inline_jobs, django_capture_on_commit_callbacks):
    from routing.services import route_prompts

    with django_capture_on_commit_callbacks(execute=True):
        state = twin.start(raw={})
    route_prompts(prompts=PROMPTS, source="api")
    stale = LiveTwin.objects.get(pk=state.pk)  # a second delivery that read the row before the first won
    assert twin.tick(state.pk, stale.generation) == stale.ticks + 1
    after = LiveTwin.objects.get(pk=state.pk)
    with twin._lock:
        assert twin._tick(stale) is False
    assert LiveTwin.objects.get(pk=state.pk).ticks == after.ticks
    assert twin.tick(state.pk, after.generation - 1) is None  # a tick from an earlier start
    assert twin.tick(state.pk, after.generation, expect=after.ticks - 1) is None  # a redelivered, spent message
    assert LiveTwin.objects.get(pk=state.pk).ticks == after.ticks
    twin.stop()
    assert twin.tick(state.pk, after.generation) is None


def test_the_tick_that_wins_schedules_the_next_and_a_spent_one_does_not(db, monkeypatch):
    sent = []
    monkeypatch.setattr(twin.jobs, "send", lambda name, *args, **kw: sent.append((name, args, kw)))
    state = LiveTwin.objects.create(enabled=True, generation=3, ticks=7, parameters=twin.normalise({}))
    assert live_twin_tick.apply(args=[state.pk, 3, 7]).get() == 8
    assert sent == [(twin.TICK_TASK, (state.pk, 3, 8), {"queue": None, "countdown": twin.TICK_SECONDS})]
    assert live_twin_tick.apply(args=[state.pk, 3, 7]).get() is None  # the same message again: nothing
    assert len(sent) == 1 and LiveTwin.objects.get(pk=state.pk).ticks == 8


def test_the_twin_keeps_ticking_after_a_lost_tick(active_router, inline_jobs, django_capture_on_commit_callbacks):
    """Inline, the next tick (a delayed job) is never run: exactly a lost message. The reconciler sends one."""
    from routing.services import route_prompts

    with django_capture_on_commit_callbacks(execute=True):
        state = twin.start(raw={})
    decisions = route_prompts(prompts=PROMPTS, source="api")
    assert twin.reconcile_twin() == {"twins_woken": 0}  # it ticked a moment ago: its next tick is on its way
    assert LiveTwin.objects.get(pk=state.pk).ticks == 1
    later = timezone.now() + timedelta(seconds=twin.TICK_LATE_S + 1)
    assert twin.reconcile_twin(now=later) == {"twins_woken": 1}
    state.refresh_from_db()
    assert (state.ticks, state.position, state.snapshot["fed"]) == (2, decisions[-1]["id"], len(PROMPTS))
    twin.stop()
    assert twin.reconcile_twin(now=later + timedelta(hours=1)) == {"twins_woken": 0}  # a stopped twin stays stopped


@pytest.mark.django_db(transaction=True)
def test_embedded_ticks_schedule_themselves_on_background_threads(active_router, settings, monkeypatch):
    """Embedded mode: no poll drives the twin; each tick sends the next with a countdown on the job runner."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.COE_JOBS_IN_BACKGROUND = True
    monkeypatch.setattr(twin, "TICK_SECONDS", 0.2)
    state = twin.start(raw={})
    deadline = time.monotonic() + 60
    while LiveTwin.objects.get(pk=state.pk).ticks < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert LiveTwin.objects.get(pk=state.pk).ticks >= 4
    twin.stop()  # no tick wins once it is stopped (the conditional update needs enabled)
    stopped = LiveTwin.objects.get(pk=state.pk).ticks
    time.sleep(1.0)  # five tick intervals: nothing may happen
    assert LiveTwin.objects.get(pk=state.pk).ticks == stopped


def test_a_new_process_rebuilds_the_same_state(active_router, inline_jobs, django_capture_on_commit_callbacks):
    from routing.services import route_prompts

    with django_capture_on_commit_callbacks(execute=True):
        state = twin.start(raw={"policy": "lfu"})
    route_prompts(prompts=PROMPTS, source="api")
    twin.tick(state.pk, state.generation)
    kept = LiveTwin.objects.get(pk=state.pk).snapshot
    twin._states.clear()  # as if the next tick ran in another worker
    route_prompts(prompts=PROMPTS[:2], source="api")
    assert twin.tick(state.pk, state.generation) is not None
    snap = LiveTwin.objects.get(pk=state.pk).snapshot
    assert snap["fed"] == len(PROMPTS) + 2 and snap["switches"] >= kept["switches"]


def test_the_twin_refuses_policies_that_need_the_future():
    from hwsim.engine import ConfigError

    with pytest.raises(ConfigError, match="lru, lfu"):
        twin.start(raw={"policy": "belady"})
