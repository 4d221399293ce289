"""Dispatch's rules, one by one: which failures count against an expert's breaker (caller_caused), how many attempts
and which waits a candidate gets, what each attempt records (on a fake clock), what the fallback reason is, what a
cancelled or buggy attempt does to a half-open breaker, what the errors say, and what open_stream / complete_first
hand back. Written to kill mutants of experts/backends/dispatch.py (scripts/mutation.sh dispatch); the scenarios
over real sockets are in test_breaker_dispatch.py."""
import asyncio
import logging
import types

import pytest

from experts.backends import (AllExpertsFailed, Backend, BackendConfig, BackendError, BreakerBoard, Completion, Delta,
                              complete_first, open_stream)
from experts.backends import dispatch
from experts.backends.dispatch import Attempt, _summary, backoff_delay, caller_caused

MSGS = [{"role": "user", "content": "route me"}]


class Clock:
    """Stands in for time.perf_counter inside dispatch and for the breakers' clock: time moves only when told."""

    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


def err(kind, retryable=True, **kw):
    return BackendError(f"scripted {kind}", kind=kind, retryable=retryable, **kw)


class Scripted(Backend):
    """Plays one outcome per call: a BackendError, "ok", "hang" (no first token), "empty" (ends without output),
    "drop" (fails after its first delta with ``drop``), or an exception class raised at once. Each call first lets
    ``took`` seconds pass on ``clock``; ``kwargs`` records what each call was asked."""

    def __init__(self, name, *script, clock=None, took=0.0, drop=None, **cfg):
        super().__init__(BackendConfig(kind="scripted", expert=name, **{
            "max_retries": 2, "backoff_s": 0.25, "first_token_timeout_s": 0.05, "timeout_s": 0.05, **cfg}))
        self.script, self.calls, self.kwargs, self.closed = list(script), 0, [], 0
        self.clock, self.took, self.drop = clock, took, drop or err("connection", retryable=False)

    async def stream(self, messages, **kwargs):
        outcome = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        self.kwargs.append(kwargs)
        if self.clock is not None:
            self.clock.now += self.took
        try:
            if isinstance(outcome, BaseException) or isinstance(outcome, type):
                raise outcome
            if outcome == "hang":
                await asyncio.sleep(30)
            if outcome == "empty":
                return
            yield Delta(f"{self.config.expert}:")
            if outcome == "drop":
                raise self.drop
            yield Delta(" answer", "stop", {"prompt_tokens": 2, "completion_tokens": 2})
        finally:
            self.closed += 1


class Sleeps:
    def __init__(self):
        self.waits = []

    async def __call__(self, seconds):
        self.waits.append(seconds)


@pytest.fixture
def clock(monkeypatch):
    """dispatch's perf_counter on a fake clock, and jitter at its upper end (uniform -> b) unless a test says."""
    c = Clock()
    monkeypatch.setattr(dispatch, "time", types.SimpleNamespace(perf_counter=c))
    monkeypatch.setattr(dispatch, "random", types.SimpleNamespace(uniform=lambda a, b: b))
    return c


def first_of(result):
    return result[0] if isinstance(result, tuple) else result


# -- who caused it -------------------------------------------------------------------------------------------

def config(normal=100):
    return BackendConfig(kind="scripted", expert="a", normal_max_tokens=normal)


@pytest.mark.parametrize("kind, max_tokens, caused", [
    ("bad_request", None, True), ("bad_request", 5, True),
    ("timeout", 101, True), ("timeout", 100, False), ("timeout", 99, False), ("timeout", None, False),
    ("upstream", 10_000, False), ("connection", 10_000, False), ("unavailable", 10_000, False),
])
def test_only_bad_requests_and_timeouts_of_longer_than_normal_answers_are_the_callers(kind, max_tokens, caused):
    gen = {} if max_tokens is None else {"max_tokens": max_tokens}
    assert caller_caused(err(kind), config(100), gen) is caused


@pytest.mark.asyncio
@pytest.mark.parametrize("dispatch_fn", [open_stream, complete_first])
@pytest.mark.parametrize("max_tokens, counted", [(101, False), (100, True), (None, True)])
async def test_a_timeout_counts_against_the_breaker_unless_the_caller_asked_for_a_longer_answer(
        dispatch_fn, max_tokens, counted):
    board = BreakerBoard(failure_threshold=1)
    slow = Scripted("a", "hang", max_retries=0, normal_max_tokens=100)
    gen = {} if max_tokens is None else {"max_tokens": max_tokens}
    result = await dispatch_fn([("a", slow), ("b", Scripted("b", "ok"))], MSGS, breakers=board, **gen)
    assert (first_of(result).expert, first_of(result).fallback_reason) == ("b", "timeout")
    assert board.get("a").state == ("open" if counted else "closed")
    assert board.get("a").snapshot()["failures"] == (1 if counted else 0)


@pytest.mark.asyncio
async def test_a_caller_caused_failure_frees_the_half_open_trial_instead_of_reopening():
    clock = Clock()
    board = BreakerBoard(failure_threshold=1, reset_timeout_s=10, clock=clock)
    board.get("a").record_failure()
    clock.now += 10
    bad = Scripted("a", err("bad_request", retryable=False))
    opened = await open_stream([("a", bad), ("b", Scripted("b", "ok"))], MSGS, breakers=board)
    assert opened.fallback_reason == "bad_request" and bad.calls == 1
    assert board.get("a").state == "half_open" and board.get("a").allow()  # the trial slot is free again


def test_judging_logs_what_the_upstream_said_or_the_message(caplog):
    board = BreakerBoard(failure_threshold=2)
    with caplog.at_level(logging.WARNING, logger="experts.backends.dispatch"):
        dispatch._judge(board.get("a"), err("upstream", detail="503 from http://vllm:8000"), "a", config(), {})
        dispatch._judge(board.get("a"), err("bad_request"), "a", config(), {})
    assert [r.getMessage() for r in caplog.records] == ["expert a failed (upstream): 503 from http://vllm:8000",
                                                        "expert a failed (bad_request): scripted bad_request"]
    assert board.get("a").snapshot()["failures"] == 1


@pytest.mark.asyncio
async def test_every_failure_is_logged_with_the_experts_name_before_and_after_the_first_token(caplog):
    timeout = err("timeout", retryable=False, detail="read timed out from http://vllm:8000")
    with caplog.at_level(logging.WARNING, logger="experts.backends.dispatch"):
        opened = await open_stream([("a", Scripted("a", err("upstream", retryable=False, detail="HTTP 503"))),
                                    ("b", Scripted("b", "drop", drop=timeout))], MSGS, breakers=BreakerBoard())
        with pytest.raises(BackendError):
            async for _ in opened.rest:
                pass
    assert [r.getMessage() for r in caplog.records] == [
        "expert a failed (upstream): HTTP 503", "expert b failed (timeout): read timed out from http://vllm:8000"]


# -- attempts, waits and reasons -----------------------------------------------------------------------------

def test_backoff_doubles_from_its_base_with_jitter_between_half_and_all_of_it(monkeypatch):
    asked = []

    def uniform(a, b):
        asked.append((a, b))
        return a

    monkeypatch.setattr(dispatch, "random", types.SimpleNamespace(uniform=uniform))
    assert [backoff_delay(n, 0.1) for n in range(3)] == pytest.approx([0.05, 0.1, 0.2])
    assert asked == [(0.5, 1.0)] * 3
    monkeypatch.setattr(dispatch, "random", types.SimpleNamespace(uniform=lambda a, b: b))
    assert [backoff_delay(n, 0.1) for n in range(3)] == pytest.approx([0.1, 0.2, 0.4])


def test_backoff_is_capped_at_five_seconds_and_never_shorter_than_retry_after(monkeypatch):
    monkeypatch.setattr(dispatch, "random", types.SimpleNamespace(uniform=lambda a, b: b))
    assert dispatch.MAX_BACKOFF_S == 5.0
    assert backoff_delay(3, 1.0) == 5.0 and backoff_delay(2, 1.0) == 4.0
    assert backoff_delay(0, 0.1, retry_after=2.0) == 2.0
    assert backoff_delay(2, 1.0, retry_after=1.0) == 4.0  # a shorter Retry-After does not shorten the wait
    assert backoff_delay(0, 0.1, retry_after=None) == 0.1
    monkeypatch.setattr(dispatch, "random", types.SimpleNamespace(uniform=lambda a, b: a))
    assert backoff_delay(30, 1.0) == 2.5


@pytest.mark.asyncio
async def test_each_retry_waits_its_backoff_from_the_experts_base_and_not_after_the_last_attempt(clock):
    sleeps = Sleeps()
    primary = Scripted("a", err("upstream"), max_retries=3, backoff_s=0.25)
    with pytest.raises(AllExpertsFailed):
        await open_stream([("a", primary)], MSGS, breakers=BreakerBoard(), sleep=sleeps)
    assert primary.calls == 4 and sleeps.waits == [0.25, 0.5, 1.0]


@pytest.mark.asyncio
@pytest.mark.parametrize("dispatch_fn", [open_stream, complete_first])
async def test_call_arguments_override_the_experts_retries_and_base(clock, dispatch_fn):
    sleeps = Sleeps()
    primary = Scripted("a", err("upstream"), max_retries=3, backoff_s=0.25)
    with pytest.raises(AllExpertsFailed):
        await dispatch_fn([("a", primary)], MSGS, breakers=BreakerBoard(), sleep=sleeps, max_retries=1,
                          backoff_s=1.0)
    assert primary.calls == 2 and sleeps.waits == [1.0]


@pytest.mark.asyncio
async def test_the_upstreams_retry_after_is_waited(clock):
    sleeps = Sleeps()
    primary = Scripted("a", err("upstream", retry_after=3.0), "ok", max_retries=1, backoff_s=0.25)
    opened = await open_stream([("a", primary)], MSGS, breakers=BreakerBoard(), sleep=sleeps)
    assert opened.expert == "a" and sleeps.waits == [3.0]


@pytest.mark.asyncio
@pytest.mark.parametrize("retries", [-1, -5])
async def test_negative_retries_still_make_one_attempt(clock, retries):
    primary = Scripted("a", err("upstream"))
    with pytest.raises(AllExpertsFailed):
        await open_stream([("a", primary)], MSGS, breakers=BreakerBoard(), sleep=Sleeps(), max_retries=retries)
    assert primary.calls == 1


@pytest.mark.asyncio
async def test_a_non_retryable_failure_moves_to_the_next_candidate_at_once(clock):
    sleeps = Sleeps()
    primary = Scripted("a", err("upstream", retryable=False), max_retries=5)
    opened = await open_stream([("a", primary), ("b", Scripted("b", "ok"))], MSGS, breakers=BreakerBoard(),
                               sleep=sleeps)
    assert primary.calls == 1 and sleeps.waits == [] and opened.fallback_reason == "upstream"


@pytest.mark.asyncio
async def test_attempts_record_each_try_with_its_own_time_and_ttft_counts_everything(clock):
    primary = Scripted("a", err("upstream", status=503), clock=clock, took=0.25, max_retries=1)
    fallback = Scripted("b", "ok", clock=clock, took=0.125)
    opened = await open_stream([("a", primary), ("b", fallback)], MSGS, breakers=BreakerBoard(), sleep=Sleeps())
    assert [a.to_dict() for a in opened.attempts] == [
        {"expert": "a", "ok": False, "error_kind": "upstream", "error": "scripted upstream", "elapsed_ms": 250.0},
        {"expert": "a", "ok": False, "error_kind": "upstream", "error": "scripted upstream", "elapsed_ms": 250.0},
        {"expert": "b", "ok": True, "error_kind": "", "error": "", "elapsed_ms": 125.0}]
    assert opened.ttft_ms == pytest.approx(625.0)


def test_an_attempts_dict_rounds_its_time_to_microseconds():
    assert Attempt("a", True, elapsed_ms=1.23456789).to_dict() == {
        "expert": "a", "ok": True, "error_kind": "", "error": "", "elapsed_ms": 1.235}


@pytest.mark.asyncio
async def test_the_primary_answering_has_no_fallback_reason_even_after_retries(clock):
    primary = Scripted("a", err("connection"), "ok")
    opened = await open_stream([("a", primary)], MSGS, breakers=BreakerBoard(), sleep=Sleeps())
    assert (opened.expert, opened.fallback_reason, primary.calls) == ("a", "", 2)


@pytest.mark.asyncio
async def test_the_fallback_reason_is_the_primarys_last_failure_not_a_later_candidates(clock):
    opened = await open_stream([("a", Scripted("a", err("timeout"), err("upstream"), max_retries=1)),
                                ("b", Scripted("b", err("connection", retryable=False))),
                                ("c", Scripted("c", "ok"))], MSGS, breakers=BreakerBoard(), sleep=Sleeps())
    assert (opened.expert, opened.fallback_reason) == ("c", "upstream")


@pytest.mark.asyncio
async def test_a_candidate_that_could_not_be_built_later_in_the_list_is_not_the_fallback_reason(clock, caplog):
    broken = BackendError("expert 'b': no model_path", kind="config", detail="/models/b is missing")
    with caplog.at_level(logging.WARNING, logger="experts.backends.dispatch"):
        opened = await open_stream([("a", Scripted("a", err("upstream", retryable=False))), ("b", broken),
                                    ("c", Scripted("c", "ok"))], MSGS, breakers=BreakerBoard(), sleep=Sleeps())
    assert (opened.expert, opened.fallback_reason) == ("c", "upstream")
    assert [a.to_dict() for a in opened.attempts][1] == {
        "expert": "b", "ok": False, "error_kind": "config", "error": "expert 'b': no model_path", "elapsed_ms": 0.0}
    assert "expert b cannot be built (config): /models/b is missing" in [r.getMessage() for r in caplog.records]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="experts.backends.dispatch"):
        await open_stream([("b", BackendError("no model_path", kind="config")), ("c", Scripted("c", "ok"))], MSGS,
                          breakers=BreakerBoard())
    assert [r.getMessage() for r in caplog.records] == ["expert b cannot be built (config): no model_path"]


@pytest.mark.asyncio
async def test_an_open_breaker_is_one_attempt_saying_so_and_the_reason(clock):
    board = BreakerBoard(failure_threshold=1)
    board.get("a").record_failure()
    primary = Scripted("a", "ok")
    opened = await open_stream([("a", primary), ("b", Scripted("b", "ok"))], MSGS, breakers=board)
    assert primary.calls == 0 and opened.fallback_reason == "breaker_open"
    assert opened.attempts[0].to_dict() == {"expert": "a", "ok": False, "error_kind": "breaker_open",
                                            "error": "circuit breaker is open", "elapsed_ms": 0.0}


@pytest.mark.asyncio
async def test_a_breaker_opening_mid_retries_stops_them_and_adds_no_breaker_attempt(clock):
    board = BreakerBoard(failure_threshold=2)
    primary = Scripted("a", err("connection"), max_retries=5)
    with pytest.raises(AllExpertsFailed) as failed:
        await open_stream([("a", primary)], MSGS, breakers=board, sleep=Sleeps())
    assert primary.calls == 2 and [a.error_kind for a in failed.value.attempts] == ["connection", "connection"]


@pytest.mark.asyncio
@pytest.mark.parametrize("dispatch_fn", [open_stream, complete_first])
@pytest.mark.parametrize("raised", [asyncio.CancelledError, RuntimeError])
async def test_a_cancelled_or_crashed_attempt_is_re_raised_and_frees_the_half_open_trial(dispatch_fn, raised):
    clock = Clock()
    board = BreakerBoard(failure_threshold=1, reset_timeout_s=10, clock=clock)
    board.get("a").record_failure()
    clock.now += 10
    primary = Scripted("a", raised)
    with pytest.raises(raised):
        await dispatch_fn([("a", primary), ("b", Scripted("b", "ok"))], MSGS, breakers=board)
    breaker = board.get("a")
    assert primary.calls == 1 and breaker.state == "half_open" and breaker.snapshot()["failures"] == 1
    assert breaker.allow()  # not the expert's health: the trial can be handed out again


@pytest.mark.asyncio
async def test_a_success_closes_a_half_open_breaker(clock):
    c = Clock()
    board = BreakerBoard(failure_threshold=1, reset_timeout_s=10, clock=c)
    board.get("a").record_failure()
    c.now += 10
    opened = await open_stream([("a", Scripted("a", "ok"))], MSGS, breakers=board)
    assert opened.expert == "a" and board.get("a").state == "closed"


# -- what the errors say -------------------------------------------------------------------------------------

def test_the_summary_names_each_attempt_and_its_error_except_for_an_open_breaker():
    assert _summary([]) == "no expert to try"
    assert _summary([Attempt("a", False, "upstream", "HTTP 503"), Attempt("a", False, "timeout", ""),
                     Attempt("b", False, "breaker_open", "circuit breaker is open")]) == (
        "all experts failed: a upstream: HTTP 503; a timeout; b breaker_open")


@pytest.mark.asyncio
async def test_no_candidates_fail_as_unavailable_with_no_attempts():
    with pytest.raises(AllExpertsFailed) as failed:
        await open_stream([], MSGS, breakers=BreakerBoard())
    assert (failed.value.kind, str(failed.value), failed.value.attempts) == ("unavailable", "no expert to try", [])


@pytest.mark.asyncio
async def test_a_missing_first_token_and_an_empty_stream_are_retryable_failures_that_say_so(clock):
    hang = Scripted("a", "hang", max_retries=1, first_token_timeout_s=0.02)
    empty = Scripted("b", "empty", max_retries=1)
    with pytest.raises(AllExpertsFailed) as failed:
        await open_stream([("a", hang), ("b", empty)], MSGS, breakers=BreakerBoard(), sleep=Sleeps())
    assert (hang.calls, empty.calls) == (2, 2)
    assert [(a.error_kind, a.error) for a in failed.value.attempts] == [
        ("timeout", "expert 'a' sent no first token within 0.02 s")] * 2 + [
        ("upstream", "expert 'b' ended its stream without any output")] * 2


@pytest.mark.asyncio
async def test_a_whole_answer_that_misses_its_deadline_is_a_retryable_timeout(clock):
    slow = Scripted("c", "hang", max_retries=1, timeout_s=0.02, first_token_timeout_s=10)
    with pytest.raises(AllExpertsFailed) as failed:
        await complete_first([("c", slow)], MSGS, breakers=BreakerBoard(), sleep=Sleeps())
    assert slow.calls == 2
    assert [(a.error_kind, a.error) for a in failed.value.attempts] == [
        ("timeout", "expert 'c' gave no answer within 0.02 s")] * 2


# -- what the caller gets ------------------------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("dispatch_fn", [open_stream, complete_first])
async def test_the_callers_generation_arguments_reach_the_expert(dispatch_fn):
    backend = Scripted("a", "ok")
    await dispatch_fn([("a", backend)], MSGS, breakers=BreakerBoard(), max_tokens=7, temperature=0.5)
    assert backend.kwargs == [{"max_tokens": 7, "temperature": 0.5}]


@pytest.mark.asyncio
async def test_a_failed_first_token_closes_the_upstream_stream(clock):
    hang, drop = Scripted("a", "hang", max_retries=0, first_token_timeout_s=0.02), Scripted("b", "empty", max_retries=0)
    with pytest.raises(AllExpertsFailed):
        await open_stream([("a", hang), ("b", drop)], MSGS, breakers=BreakerBoard())
    assert (hang.closed, drop.closed) == (1, 1)


@pytest.mark.asyncio
async def test_a_cancelled_first_token_wait_closes_the_upstream_stream():
    hang = Scripted("a", "hang", max_retries=0, first_token_timeout_s=30)
    task = asyncio.ensure_future(open_stream([("a", hang)], MSGS, breakers=BreakerBoard()))
    while hang.calls == 0:  # until the attempt is waiting for its first token
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hang.closed == 1


class Longer(Scripted):
    async def stream(self, messages, **kwargs):
        try:
            for word in ("one", " two", " three"):
                yield Delta(word)
        finally:
            self.closed += 1


@pytest.mark.asyncio
async def test_a_reader_that_stops_mid_stream_closes_the_upstream():
    backend = Longer("a")
    opened = await open_stream([("a", backend)], MSGS, breakers=BreakerBoard())
    assert (await anext(opened.rest)).text == " two" and backend.closed == 0
    await opened.rest.aclose()
    assert backend.closed == 1


@pytest.mark.asyncio
async def test_a_reader_that_stops_right_after_the_first_delta_closes_the_upstream():
    """Opened.rest closed before its first read must still close the upstream (it used to stay open until garbage
    collection: an async generator closed before it started never runs its finally)."""
    backend = Longer("a")
    opened = await open_stream([("a", backend)], MSGS, breakers=BreakerBoard())
    assert (opened.first.text, backend.closed) == ("one", 0)
    await opened.rest.aclose()  # what the chat endpoint does when the client goes away after the first chunk
    assert backend.closed == 1


@pytest.mark.asyncio
async def test_the_rest_of_a_stream_is_every_remaining_delta():
    opened = await open_stream([("a", Scripted("a", "ok"))], MSGS, breakers=BreakerBoard())
    rest = [d async for d in opened.rest]
    assert [(d.text, d.finish_reason, d.usage) for d in rest] == [
        (" answer", "stop", {"prompt_tokens": 2, "completion_tokens": 2})]


@pytest.mark.asyncio
@pytest.mark.parametrize("max_tokens, counted", [(1000, True), (1001, False)])
async def test_a_mid_stream_failure_is_judged_by_the_answering_experts_own_normal_length(max_tokens, counted):
    board = BreakerBoard(failure_threshold=1)
    timeout = err("timeout", retryable=False)
    candidates = [("a", BackendError("cannot build a", kind="config")),
                  ("b", Scripted("b", "drop", drop=timeout, normal_max_tokens=1000))]
    opened = await open_stream(candidates, MSGS, breakers=board, max_tokens=max_tokens)
    with pytest.raises(BackendError, match="scripted timeout"):
        async for _ in opened.rest:
            pass
    assert board.get("b").state == ("open" if counted else "closed")


@pytest.mark.asyncio
async def test_complete_first_hands_back_the_whole_answer_as_the_first_delta_and_nothing_after(clock):
    opened, done = await complete_first([("a", Scripted("a", "ok", clock=clock, took=0.5))], MSGS,
                                        breakers=BreakerBoard())
    assert done == Completion("a: answer", "stop", {"prompt_tokens": 2, "completion_tokens": 2})
    assert (opened.first.text, opened.first.finish_reason, opened.first.usage) == (done.text, "stop", done.usage)
    assert (opened.expert, opened.fallback_reason, opened.ttft_ms) == ("a", "", 500.0)
    assert [d async for d in opened.rest] == []


@pytest.mark.asyncio
async def test_complete_first_reports_its_fallback_reason(clock):
    opened, done = await complete_first([("a", Scripted("a", err("upstream", retryable=False))),
                                         ("b", Scripted("b", "ok"))], MSGS, breakers=BreakerBoard())
    assert (opened.expert, opened.fallback_reason, done.text) == ("b", "upstream", "b: answer")
