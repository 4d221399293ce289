"""Circuit breakers (fake clock) and dispatch: retries, fallback, breaker accounting, AllExpertsFailed."""
import asyncio
import json
import threading
import types

import pytest
import pytest_asyncio

from experts.backends import (AllExpertsFailed, Backend, BackendConfig, BackendError, BreakerBoard, CircuitBreaker,
                              Delta, complete_first, make_backend, open_stream)
from experts.backends import dispatch
from experts.backends.dispatch import backoff_delay
from experts.backends.openai_http import aclose_shared_client
from tests.fakes.openai_server import FakeOpenAI, closed_port

MSGS = [{"role": "user", "content": "route me"}]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def err(kind, retryable=True, **kw):
    return BackendError(f"scripted {kind}", kind=kind, retryable=retryable, **kw)


class Scripted(Backend):
    """Plays one outcome per call: a BackendError, "ok", "hang" (no first token) or "drop" (fails mid-stream)."""

    def __init__(self, name, *script, **cfg):
        super().__init__(BackendConfig(kind="scripted", expert=name, **{
            "max_retries": 2, "backoff_s": 0.001, "first_token_timeout_s": 0.1, **cfg}))
        self.script, self.calls = list(script), 0

    async def stream(self, messages, **kwargs):
        outcome = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(outcome, BackendError):
            raise outcome
        if outcome == "hang":
            await asyncio.sleep(30)
        yield Delta(f"{self.config.expert}:")
        if outcome == "drop":
            raise err("connection", retryable=False)
        yield Delta(" answer", "stop", {"prompt_tokens": 2, "completion_tokens": 2})


async def no_sleep(_):
    pass


# -- breaker -------------------------------------------------------------------------------------------

def test_breaker_opens_after_threshold_and_recovers_through_one_half_open_trial():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, reset_timeout_s=30, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    b.record_success()  # success resets the consecutive count
    for _ in range(3):
        assert b.state == "closed" and b.allow()
        b.record_failure()
    assert b.state == "open" and not b.allow()
    clock.now += 29.9
    assert not b.allow()
    clock.now += 0.1
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # exactly one trial
    b.record_failure()  # the trial failed: open again, for another full timeout
    assert b.state == "open"
    clock.now += 30
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()
    assert b.snapshot()["failures"] == 0


def test_unreported_or_released_trial_does_not_wedge_half_open():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, reset_timeout_s=10, clock=clock)
    b.record_failure()
    clock.now += 10
    assert b.allow() and not b.allow()
    b.release()  # e.g. the trial was a bad_request
    assert b.state == "half_open" and b.allow()
    clock.now += 10  # a trial nobody reported on expires
    assert b.allow()


def test_snapshot_is_json_safe_and_board_is_a_registry():
    clock = Clock()
    board = BreakerBoard(failure_threshold=2, reset_timeout_s=5, clock=clock)
    assert board.get("a") is board.get("a") and list(board.snapshot()) == ["a"]
    board.get("b").record_failure()
    board.get("b").record_failure()
    clock.now += 2
    snap = json.loads(json.dumps(board.snapshot()))
    assert list(snap) == ["a", "b"]
    assert snap["a"]["state"] == "closed" and snap["a"]["opened_s_ago"] is None
    assert (snap["b"]["state"], snap["b"]["failures"]) == ("open", 2)
    assert (snap["b"]["opened_s_ago"], snap["b"]["retry_in_s"]) == (2.0, 3.0)


def test_breaker_counts_are_exact_under_threads():
    b = CircuitBreaker(failure_threshold=10**9)

    def hammer():
        for _ in range(2000):
            b.allow()
            b.record_failure()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.snapshot()["total_failures"] == 16000 == b.snapshot()["failures"]


def test_backoff_grows_with_jitter_and_respects_retry_after():
    delays = [backoff_delay(n, 0.1) for n in range(3)]
    assert 0.05 <= delays[0] <= 0.1 and 0.1 <= delays[1] <= 0.2 and 0.2 <= delays[2] <= 0.4
    assert backoff_delay(0, 0.1, retry_after=2.0) == 2.0
    assert backoff_delay(30, 1.0) <= 5.0


# -- dispatch ------------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_primary_answers_without_fallback(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(dispatch, "time", types.SimpleNamespace(perf_counter=clock))

    class Timed(Scripted):
        async def stream(self, messages, **kwargs):
            clock.now += 0.25  # this expert takes 250 ms to its first token
            async for delta in super().stream(messages, **kwargs):
                yield delta

    board = BreakerBoard()
    opened = await open_stream([("a", Timed("a", "ok")), ("b", Scripted("b", "ok"))], MSGS, breakers=board)
    assert (opened.expert, opened.fallback_reason, opened.first.text) == ("a", "", "a:")
    assert [d.text async for d in opened.rest] == [" answer"]
    assert len(opened.attempts) == 1 and opened.attempts[0].ok
    assert opened.attempts[0].elapsed_ms == opened.ttft_ms == 250.0


@pytest.mark.asyncio
async def test_retries_with_backoff_then_falls_back_with_the_primary_error_kind():
    slept = []

    async def sleep(s):
        slept.append(s)

    primary, fallback = Scripted("a", err("upstream", status=503)), Scripted("b", "ok")
    opened = await open_stream([("a", primary), ("b", fallback)], MSGS, breakers=BreakerBoard(), sleep=sleep,
                               backoff_s=0.1)
    assert (opened.expert, opened.fallback_reason) == ("b", "upstream")
    assert [(a.expert, a.ok, a.error_kind) for a in opened.attempts] == [
        ("a", False, "upstream"), ("a", False, "upstream"), ("a", False, "upstream"), ("b", True, "")]
    assert primary.calls == 3 and len(slept) == 2 and 0.05 <= slept[0] <= 0.1 <= slept[1] <= 0.2


@pytest.mark.asyncio
async def test_non_retryable_error_moves_on_at_once_and_bad_request_spares_the_breaker():
    board = BreakerBoard(failure_threshold=1)
    primary = Scripted("a", err("bad_request", retryable=False, status=400))
    opened = await open_stream([("a", primary), ("b", Scripted("b", "ok"))], MSGS, breakers=board, sleep=no_sleep)
    assert primary.calls == 1 and opened.fallback_reason == "bad_request"
    assert board.get("a").state == "closed"
    config_broken = Scripted("c", err("config", retryable=False))
    await open_stream([("c", config_broken), ("b", Scripted("b", "ok"))], MSGS, breakers=board, sleep=no_sleep)
    assert config_broken.calls == 1 and board.get("c").state == "open"


@pytest.mark.asyncio
async def test_open_breaker_skips_the_primary_and_half_open_trial_recovers_it():
    clock = Clock()
    board = BreakerBoard(failure_threshold=2, reset_timeout_s=30, clock=clock)
    primary = Scripted("a", err("connection"), err("connection"), "ok", max_retries=5)
    opened = await open_stream([("a", primary), ("b", Scripted("b", "ok"))], MSGS, breakers=board, sleep=no_sleep)
    # the breaker opened after two failures, cutting the retries short; the reason stays the real error
    assert primary.calls == 2 and opened.fallback_reason == "connection" and board.get("a").state == "open"

    opened = await open_stream([("a", primary), ("b", Scripted("b", "ok"))], MSGS, breakers=board, sleep=no_sleep)
    assert primary.calls == 2 and (opened.expert, opened.fallback_reason) == ("b", "breaker_open")
    assert opened.attempts[0].error_kind == "breaker_open"

    clock.now += 30
    opened = await open_stream([("a", primary), ("b", Scripted("b", "ok"))], MSGS, breakers=board, sleep=no_sleep)
    assert (opened.expert, opened.fallback_reason) == ("a", "") and board.get("a").state == "closed"


@pytest.mark.asyncio
async def test_all_experts_failed_summarises_attempts():
    board = BreakerBoard()
    with pytest.raises(AllExpertsFailed) as exc:
        await open_stream([("a", Scripted("a", err("timeout"))), ("b", Scripted("b", err("upstream", False)))],
                          MSGS, breakers=board, sleep=no_sleep, max_retries=1)
    e = exc.value
    assert isinstance(e, BackendError) and e.kind == "unavailable"
    assert [(a.expert, a.error_kind) for a in e.attempts] == [("a", "timeout"), ("a", "timeout"), ("b", "upstream")]
    assert "a timeout" in str(e) and "b upstream" in str(e)
    assert board.snapshot()["a"]["failures"] == 2


@pytest.mark.asyncio
async def test_first_token_deadline_and_mid_stream_failure():
    board = BreakerBoard()
    opened = await open_stream([("a", Scripted("a", "hang", max_retries=0)), ("b", Scripted("b", "drop"))], MSGS,
                               breakers=board)
    assert (opened.expert, opened.fallback_reason, opened.first.text) == ("b", "timeout", "b:")
    assert 90 <= opened.attempts[0].elapsed_ms < 1000
    with pytest.raises(BackendError):
        async for _ in opened.rest:
            pass
    assert board.get("b").snapshot()["failures"] == 1  # no fallback after the first token, but it counts


@pytest.mark.asyncio
async def test_an_empty_stream_is_a_failed_attempt():
    class Empty(Scripted):
        async def stream(self, messages, **kwargs):
            self.calls += 1
            return
            yield

    with pytest.raises(AllExpertsFailed) as exc:
        await open_stream([("a", Empty("a", max_retries=0))], MSGS, breakers=BreakerBoard())
    assert exc.value.attempts[0].error_kind == "upstream"


@pytest.mark.asyncio
@pytest.mark.parametrize("dispatch", [open_stream, complete_first])
async def test_a_backend_that_could_not_be_built_is_a_failed_attempt_and_the_fallback_reason(dispatch):
    board = BreakerBoard(failure_threshold=1)
    broken = BackendError("expert 'a': a transformers backend needs model_path", kind="config")
    result = await dispatch([("a", broken), ("b", Scripted("b", "ok"))], MSGS, breakers=board)
    opened = result[0] if isinstance(result, tuple) else result
    assert (opened.expert, opened.fallback_reason) == ("b", "config")
    assert [(a.expert, a.ok, a.error_kind) for a in opened.attempts] == [("a", False, "config"), ("b", True, "")]
    assert "a" not in board.snapshot()  # not the expert's health: its breaker is untouched
    with pytest.raises(AllExpertsFailed) as failed:
        await dispatch([("b", Scripted("b", err("upstream", False))), ("a", broken)], MSGS, breakers=board)
    assert [a.error_kind for a in failed.value.attempts] == ["upstream", "config"]


@pytest.mark.asyncio
@pytest.mark.parametrize("dispatch", [open_stream, complete_first])
async def test_preparing_a_backend_is_outside_its_deadlines(dispatch):
    class ColdStart(Scripted):
        ready = False

        async def prepare(self):  # e.g. loading a local model
            if not self.ready:
                await asyncio.sleep(0.3)
                self.ready = True

        async def stream(self, messages, **kwargs):
            await self.prepare()  # a backend also prepares itself when called directly
            async for delta in super().stream(messages, **kwargs):
                yield delta

    cold = ColdStart("a", "ok", max_retries=0, first_token_timeout_s=0.1, timeout_s=0.1)
    result = await dispatch([("a", cold)], MSGS, breakers=BreakerBoard())
    opened = result[0] if isinstance(result, tuple) else result
    assert opened.expert == "a" and opened.ttft_ms >= 300  # the client did wait for it


@pytest.mark.asyncio
async def test_complete_first_asks_for_whole_answers_with_the_same_rules():
    board = BreakerBoard(failure_threshold=2)
    primary = Scripted("a", err("upstream", status=500), "drop", "ok", timeout_s=5)
    opened, done = await complete_first([("a", primary), ("b", Scripted("b", "ok"))], MSGS, breakers=board,
                                        max_retries=1, backoff_s=0.0)
    # a failure part-way through a whole answer is just a failed attempt: nothing was sent yet, so it falls back
    assert (opened.expert, opened.fallback_reason, done.text) == ("b", "connection", "b: answer")
    assert [(a.expert, a.error_kind) for a in opened.attempts] == [("a", "upstream"), ("a", "connection"), ("b", "")]
    assert board.get("a").state == "open" and [d async for d in opened.rest] == []
    slow = Scripted("c", "hang", timeout_s=0.05, first_token_timeout_s=10)
    with pytest.raises(AllExpertsFailed) as failed:
        await complete_first([("c", slow)], MSGS, breakers=BreakerBoard(), max_retries=0)
    assert failed.value.attempts[0].error_kind == "timeout"


# -- dispatch over real sockets ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_servers():
    with FakeOpenAI(model="alpha") as a, FakeOpenAI(model="beta", tokens=["from", "beta"]) as b:
        yield a, b


@pytest_asyncio.fixture
async def pool():
    yield
    await aclose_shared_client()


def http_backend(name, base_url):
    return make_backend(BackendConfig("openai", name, model=name, base_url=base_url, max_retries=1, backoff_s=0.001,
                                      connect_timeout_s=1, first_token_timeout_s=1, timeout_s=5))


@pytest.mark.asyncio
async def test_real_upstream_failing_falls_back_to_the_second_server(two_servers, pool):
    a, b = two_servers
    a.reset(mode="error", status=503)
    b.reset(tokens=["from", "beta"])
    candidates = [("alpha", http_backend("alpha", a.base_url)), ("beta", http_backend("beta", b.base_url))]
    opened, done = await complete_first(candidates, MSGS, breakers=BreakerBoard())
    assert (opened.expert, opened.fallback_reason, done.text) == ("beta", "upstream", "from beta")
    assert len(a.requests) == 2 and len(b.requests) == 1

    candidates[0] = ("alpha", http_backend("alpha", f"http://127.0.0.1:{closed_port()}/v1"))
    opened = await open_stream(candidates, MSGS, breakers=BreakerBoard())
    assert (opened.expert, opened.fallback_reason) == ("beta", "connection")

