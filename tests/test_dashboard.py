"""The live dashboard: the coalescer's rate limit, the snapshot used to catch up, websocket summaries after a
commit, the page, and staff-only demo traffic."""
import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from coe_site.realtime import Coalescer


class Recording(Coalescer):
    """The real coalescer, recording what it would send instead of using a channel layer."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sent = []

    def _send(self, pending, own_loop=None):
        self.sent.append((time.monotonic(), pending))


def wait_for(condition, timeout=5.0, what="the condition"):
    """Poll ``condition`` until it holds (returns its value) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.005)
    return value


def decision(i, expert="qwen", category="math", reason=""):
    return {"id": i, "prompt": f"p{i}", "category": category, "confidence": 0.9, "entropy": 0.1,
            "fallback_reason": reason, "expert": expert, "latency_ms": 1.0 + i % 3, "batch": None, "t": 0}


def test_coalescer_sends_the_first_event_at_once_then_at_most_ten_per_second():
    c = Recording(interval=0.1, feed=5)
    start = time.monotonic()
    c.add_decisions([decision(0)])
    wait_for(lambda: c.sent, 2, "the first summary")
    assert c.sent[0][0] - start < 0.05  # leading edge: no waiting when quiet
    n = 0
    while time.monotonic() - start < 1.5:  # a flood: ~1,000 decisions per second for 1.5 s
        c.add_decisions([decision(n + 1, expert="a" if n % 2 else "b", reason="low_margin" if n % 5 == 0 else "")])
        n += 1
        time.sleep(0.001)
    wait_for(lambda: sum(p["count"] for _, p in c.sent) == n + 1, 2, "the trailing summary")
    times = [t for t, _ in c.sent]
    assert len(times) <= 1.5 / 0.1 + 2
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.095
    summaries = [p for _, p in c.sent]
    assert sum(p["count"] for p in summaries) == n + 1  # folded, never dropped
    assert sum(p["experts"].get("a", 0) + p["experts"].get("b", 0) for p in summaries) == n
    assert sum(p["fallbacks"] for p in summaries) == len(range(0, n, 5))
    assert all(len(p["decisions"]) <= 5 for p in summaries)
    last = summaries[-1]["decisions"]
    assert [d["id"] for d in last] == sorted((d["id"] for d in last), reverse=True)  # newest first


def test_coalescer_keeps_the_latest_batch_progress():
    c = Recording(interval=0.2)
    c.add_decisions([decision(1)])
    wait_for(lambda: c.sent, 2, "the leading-edge summary")  # so the progress below waits for the next interval
    for done in (10, 20, 30):
        c.add_batch({"id": 4, "status": "running", "done": done, "total": 30})
    wait_for(lambda: c.sent[-1][1]["batches"], 2, "a summary with batch progress")
    assert c.sent[-1][1]["batches"] == {"4": {"id": 4, "status": "running", "done": 30, "total": 30}}


def test_snapshot_needs_login_and_reports_recent_decisions(client, user, active_router):
    from routing.services import route_prompts

    assert client.get("/api/dashboard").status_code == 401
    route_prompts(prompts=["Solve the equation 2x + 3 = 11 for x.", "Write a Java class for a bank account."],
                  source="api")
    client.force_login(user)
    snap = client.get("/api/dashboard").json()
    assert [d["category"] for d in snap["feed"]] == ["coding", "math"]
    assert sum(s["count"] for s in snap["seconds"]) == 2
    assert sum(sum(s["experts"].values()) for s in snap["seconds"]) == 2
    assert len(snap["latencies"]) == 2 and snap["map_version"] == 1 and snap["router_version"] == 1
    assert set(snap["experts"]) >= {d["expert"] for d in snap["feed"]}


def test_dashboard_page_shows_the_demo_control_to_staff_only(client, user, django_user_model):
    client.force_login(user)
    page = client.get("/dashboard/").content.decode()
    assert 'id="chart-experts"' in page and "chart.umd.min.js" in page and 'id="demo-form"' not in page
    assert client.post("/api/demo", {"action": "start"}, content_type="application/json").status_code == 403
    admin = django_user_model.objects.create_user("admin", password="admin-pass-123", is_staff=True)
    client.force_login(admin)
    assert 'id="demo-form"' in client.get("/dashboard/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_staff_start_and_stop_demo_traffic(client, django_user_model, active_router, settings):
    from routing import services
    from routing.models import DemoTraffic, RoutingDecision

    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, True  # the embedded runner ticks
    admin = django_user_model.objects.create_user("admin", password="admin-pass-123", is_staff=True)
    client.force_login(admin)
    r = client.post("/api/demo", {"action": "start", "rate": 20}, content_type="application/json")
    assert r.json() == {"running": True, "rate": 20.0, "batch": None}
    assert client.post("/api/demo", {"action": "start", "rate": 5}, content_type="application/json").status_code == 409
    assert client.get("/api/demo").json() == {"running": True, "rate": 20.0, "batch": None}
    wait_for(lambda: RoutingDecision.objects.filter(source="demo").count() >= 10, 30, "ten demo decisions")
    assert client.post("/api/demo", {"action": "stop"}, content_type="application/json").json()["running"] is False
    # stopped means stopped: ticks route under the row's lock, so a tick delivered now routes nothing
    demo = DemoTraffic.objects.get(name="default")
    routed = RoutingDecision.objects.filter(source="demo").count()
    assert services.demo_tick(demo.pk, demo.generation, None) is None
    assert routed >= 10 and RoutingDecision.objects.filter(source="demo").count() == routed
    _embedded_runner_idle(settings)


def _embedded_runner_idle(settings):
    """Wait until the ticks already scheduled have run (each then finds the demo stopped), before the test's
    database goes: no timer left, and every runner thread free at once (they meet at a barrier)."""
    import threading

    from coe_site import jobs

    wait_for(lambda: not any(isinstance(t, threading.Timer) and t.is_alive() for t in threading.enumerate()), 10,
             "the scheduled ticks to fire")
    barrier = threading.Barrier(settings.COE_EMBEDDED_WORKERS)
    for job in [jobs._executor().submit(barrier.wait, 10) for _ in range(settings.COE_EMBEDDED_WORKERS)]:
        job.result(15)


def test_demo_state_is_the_rows_so_any_web_process_sees_and_stops_it(db, active_router, settings,
                                                                    django_capture_on_commit_callbacks):
    """The state is the row's (no thread or variable of the process that started it), so any web process sees and
    stops the same demo."""
    from routing import services
    from routing.models import DemoTraffic

    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, False  # inline: the first tick runs
    # at commit in this thread, later ones (delayed) are not scheduled
    with django_capture_on_commit_callbacks(execute=True):
        services.start_demo(rate=4)
    assert services.demo_state() == {"running": True, "rate": 4.0, "batch": None}
    services.stop_demo()
    assert services.demo_state() == {"running": False, "rate": None, "batch": None}
    assert not DemoTraffic.objects.get(name="default").running


def test_a_demo_tick_routes_what_is_due_and_says_when_to_tick_again(db, active_router, settings,
                                                                   django_capture_on_commit_callbacks):
    from datetime import timedelta

    from routing import services
    from routing.models import DemoTraffic, RoutingDecision

    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, False
    with django_capture_on_commit_callbacks(execute=True):
        services.start_demo(rate=2)  # the first tick (inline, at commit) routes the first prompt
    demo = DemoTraffic.objects.get(name="default")
    assert demo.sent == 1 == RoutingDecision.objects.filter(source="demo").count()
    at = lambda s: demo.started_at + timedelta(seconds=s)  # noqa: E731
    assert demo.ticks == 1
    delay, ticks = services.demo_tick(demo.pk, demo.generation, 1, now=at(0.2))  # nothing due yet
    assert (delay, ticks) == (pytest.approx(0.3), 2)
    assert services.demo_tick(demo.pk, demo.generation, 1, now=at(0.3)) is None  # a duplicate of that tick: ends
    delay, ticks = services.demo_tick(demo.pk, demo.generation, 2, now=at(1.1))  # due: 0.5 and 1.0 s
    assert (delay, ticks) == (pytest.approx(0.4), 3)
    assert DemoTraffic.objects.get(pk=demo.pk).sent == 3 == RoutingDecision.objects.filter(source="demo").count()
    delay, ticks = services.demo_tick(demo.pk, demo.generation, 3, now=at(9.0))  # behind: one second's worth
    assert (delay, ticks) == (pytest.approx(0.1), 4)  # (2 prompts), then the shortest wait
    assert DemoTraffic.objects.get(pk=demo.pk).sent == 5
    assert services.demo_tick(demo.pk, demo.generation - 1, 4, now=at(9.5)) is None  # an old start's tick: nothing
    services.stop_demo()
    assert services.demo_tick(demo.pk, demo.generation, 4, now=at(10.0)) is None
    assert RoutingDecision.objects.filter(source="demo").count() == 5


def test_the_reconciler_wakes_a_running_demo_whose_ticks_stopped(db, active_router, settings, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from routing import services
    from routing.models import DemoTraffic

    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, False
    services.start_demo(rate=1)
    sent = []
    monkeypatch.setattr(services.jobs, "send", lambda *a, **kw: sent.append(a))
    demo = DemoTraffic.objects.get(name="default")
    assert services.reconcile_demo(now=demo.ticked_at + timedelta(seconds=services.DEMO_LATE_S - 1)) == {
        "demos_woken": 0}
    assert services.reconcile_demo(now=demo.ticked_at + timedelta(seconds=services.DEMO_LATE_S + 1)) == {
        "demos_woken": 1}
    assert sent == [(services.DEMO_TICK, demo.pk, demo.generation, demo.ticks)]
    services.stop_demo()
    assert services.reconcile_demo(now=timezone.now() + timedelta(hours=1)) == {"demos_woken": 0}


class DemoClock:
    """The demo generator's clock, moved only by its waits: routing takes no time on it, so the schedule is exact
    on any machine. ``wait`` is the stop event's; ``stall_at`` makes one wait oversleep (a busy machine)."""

    def __init__(self, count):
        self.now, self.count, self.seen, self.stall_at, self._stopped = 1000.0, count, [], {}, False

    def monotonic(self):
        return self.now

    def __getattr__(self, name):  # everything else from the real time module
        return getattr(time, name)

    # the stop event
    def is_set(self):
        return self._stopped

    def set(self):
        self._stopped = True

    def wait(self, seconds):
        self.seen.append((round(self.now - 1000.0, 6), self.count()))
        self.now += seconds + self.stall_at.pop(len(self.seen), 0.0)
        return self._stopped


@pytest.fixture
def demo_clock(monkeypatch):
    from routing import services
    from routing.models import RoutingDecision

    clock = DemoClock(lambda: RoutingDecision.objects.filter(source="demo").count())
    monkeypatch.setattr(services, "time", clock)
    return clock


def test_demo_generator_keeps_its_rate(db, active_router, demo_clock):
    from routing.models import RoutingDecision
    from routing.services import demo_prompts, run_demo_traffic

    sent = run_demo_traffic(rate=2, prompts=demo_prompts(), stop=demo_clock, duration=1.6)
    assert sent == 4 == RoutingDecision.objects.filter(source="demo").count()
    assert demo_clock.seen == [(0.0, 1), (0.5, 2), (1.0, 3), (1.5, 4)]  # one prompt every 0.5 s, never early


def test_demo_generator_catches_up_at_most_one_second_at_a_time(db, active_router, demo_clock):
    from routing.services import demo_prompts, run_demo_traffic

    demo_clock.stall_at = {1: 2.0}  # the first wait oversleeps by 2 s: prompts due at 0.5 … 2.5 s are late
    sent = run_demo_traffic(rate=2, prompts=demo_prompts(), stop=demo_clock, duration=3.2)
    # at 2.5 s five are due but one second's worth (2) go at once; the rest follow on the following ticks
    assert demo_clock.seen == [(0.0, 1), (2.5, 3), (2.6, 5), (2.7, 6), (3.0, 7)]
    assert sent == 7


def test_demo_traffic_command_replays_a_batch(db, active_router, demo_clock, monkeypatch):
    import types

    from django.core.management import call_command

    from routing.engine.inputs import Item
    from routing.management.commands import demo_traffic
    from routing.models import RoutingDecision
    from routing.services import create_batch

    monkeypatch.setattr(demo_traffic, "threading", types.SimpleNamespace(Event=lambda: demo_clock))
    batch = create_batch(items=[Item(1, "Integrate x^2 from 0 to 1."), Item(2, "Tell me a joke.")], name="demo source")
    call_command("demo_traffic", rate=10, duration=1.0, batch=batch.pk)
    prompts = list(RoutingDecision.objects.filter(source="demo").order_by("id").values_list("prompt", flat=True))
    assert prompts == ["Integrate x^2 from 0 to 1.", "Tell me a joke."] * 5  # 10/s for 1 s, round-robin


def in_own_loop(coroutine_function):
    """Run an async check on a fresh event loop in its own thread: immune to a loop left running in the main
    thread (Playwright's sync API keeps one for the session-scoped browser)."""
    outcome = {}

    def run():
        try:
            asyncio.run(coroutine_function())
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the async check did not finish within 60 s"
    if "error" in outcome:
        raise outcome["error"]


@pytest.mark.django_db(transaction=True)
def test_a_routed_decision_reaches_a_websocket_client_as_a_summary(user, active_router):
    in_own_loop(lambda: _decision_reaches_client(user))


async def _decision_reaches_client(user):
    from access.services import issue_token
    from routing.services import route_prompts

    def app():
        from coe_site.asgi import application  # start-up checks the (test) database: import it in a thread

        return application

    token = await sync_to_async(lambda: issue_token(user=user.username)[0])()
    comm = WebsocketCommunicator(await sync_to_async(app)(), "/ws/events/?groups=dashboard",
                                 headers=[(b"origin", b"http://127.0.0.1"), (b"authorization", f"Bearer {token}".encode())])
    assert (await comm.connect(timeout=5))[0]
    assert (await comm.receive_json_from(timeout=5))["event"] == "hello"
    sent = time.time()
    # the socket's own prompt
    await sync_to_async(route_prompts)(prompts=["Differentiate sin(x) * x^2."], source="api", user=user)
    message = await comm.receive_json_from(timeout=10)
    assert message["event"] == "dashboard.summary"
    data = message["data"]
    assert data["count"] == 1 and data["categories"] == {"math": 1}
    feed = data["decisions"][0]
    assert feed["prompt"] == "Differentiate sin(x) * x^2." and feed["category"] == "math"
    assert sent <= feed["t"] <= time.time()
    await comm.disconnect()
