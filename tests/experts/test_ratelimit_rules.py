"""The per-user rate limit's rules against the real configured cache (LocMem embedded, Redis with REDIS_URL), on a
fake clock: the limit itself, the fixed one-minute window, what Retry-After says, the key and its expiry, and what
happens when the cache misbehaves. Written to kill mutants of experts/ratelimit.py (scripts/mutation.sh ratelimit).
"""
import logging
import types
import uuid

import pytest
from django.core.cache import cache

from experts import ratelimit


@pytest.fixture
def clock(monkeypatch):
    """Pin the limiter's clock: ``clock.now`` is what time.time() returns inside experts.ratelimit."""
    state = types.SimpleNamespace(now=1_000_040.5)  # 20.5 s into minute 16667 (which starts at 1,000,020)
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(time=lambda: state.now))
    return state


@pytest.fixture
def key():
    """A key no other test (or earlier run against a shared Redis) has counted."""
    return f"user:test-{uuid.uuid4().hex}"


class Recording:
    """Delegates to the real cache and records what the limiter asked of it."""

    def __init__(self, real, drop_after_add=False, fail=False):
        self.real, self.calls, self.drop_after_add, self.fail = real, [], drop_after_add, fail

    def add(self, name, value, timeout):
        self.calls.append(("add", name, value, timeout))
        if self.fail:
            raise ConnectionError("cache is down")
        added = self.real.add(name, value, timeout=timeout)
        if self.drop_after_add:  # the key expires between add and incr
            self.real.delete(name)
        return added

    def incr(self, name, delta=1):
        self.calls.append(("incr", name, delta))
        return self.real.incr(name, delta)

    def set(self, name, value, timeout):
        self.calls.append(("set", name, value, timeout))
        return self.real.set(name, value, timeout=timeout)


def test_exactly_the_limit_is_allowed_and_one_more_is_refused(clock, key):
    assert [ratelimit.check(key, 3) for _ in range(3)] == [0, 0, 0]
    assert ratelimit.check(key, 3) == 40  # 39.5 s left in the minute: rounded down, plus one
    assert ratelimit.check(key, 3) == 40  # refused calls still count; the answer does not change


def test_limit_of_one(clock, key):
    assert ratelimit.check(key, 1) == 0
    assert ratelimit.check(key, 1) > 0


@pytest.mark.parametrize("per_minute", [0, -5])
def test_zero_or_negative_limit_turns_limiting_off_and_counts_nothing(clock, key, monkeypatch, per_minute):
    recording = Recording(cache)
    monkeypatch.setattr(ratelimit, "cache", recording)
    assert all(ratelimit.check(key, per_minute) == 0 for _ in range(50))
    assert recording.calls == []


def test_a_new_minute_starts_a_new_count(clock, key):
    clock.now = 1_000_019.999  # 59.999 s into minute 16666
    assert ratelimit.check(key, 1) == 0
    assert ratelimit.check(key, 1) == 1  # 0.001 s left: never less than one second
    clock.now = 1_000_020.0  # first instant of the next minute
    assert ratelimit.check(key, 1) == 0
    assert ratelimit.check(key, 1) == 61  # a whole minute left: 60 s, plus one


def test_retry_after_counts_down_through_the_minute(clock, key):
    base = 1_000_020.0
    ratelimit.check(key, 1)
    answers = {}
    for into in (0.0, 0.4, 30.0, 58.6, 59.0):
        clock.now = base + into
        answers[into] = ratelimit.check(key, 1)
    assert answers == {0.0: 61, 0.4: 60, 30.0: 31, 58.6: 2, 59.0: 2}


def test_keys_are_counted_separately(clock, key):
    other = key + "-other"
    assert ratelimit.check(key, 1) == 0
    assert ratelimit.check(key, 1) > 0
    assert ratelimit.check(other, 1) == 0


def test_the_counter_is_named_by_key_and_minute_and_outlives_its_minute(clock, key, monkeypatch):
    recording = Recording(cache)
    monkeypatch.setattr(ratelimit, "cache", recording)
    ratelimit.check(key, 5)
    name = f"ratelimit:{key}:16667"
    assert recording.calls == [("add", name, 0, 90), ("incr", name, 1)]
    assert cache.get(name) == 1


def test_key_expiring_between_add_and_incr_starts_the_window_at_one(clock, key, monkeypatch):
    monkeypatch.setattr(ratelimit, "cache", Recording(cache, drop_after_add=True))
    assert ratelimit.check(key, 2) == 0
    name = f"ratelimit:{key}:16667"
    assert ratelimit.cache.calls[-1] == ("set", name, 1, 90)
    monkeypatch.setattr(ratelimit, "cache", cache)
    assert ratelimit.check(key, 2) == 0  # the set counted this request as the first: one more fits
    assert ratelimit.check(key, 2) > 0


def test_key_expiring_with_a_limit_of_one_still_allows_that_request(clock, key, monkeypatch):
    monkeypatch.setattr(ratelimit, "cache", Recording(cache, drop_after_add=True))
    assert ratelimit.check(key, 1) == 0


def test_unreachable_cache_lets_the_request_through_and_says_so(clock, key, monkeypatch, caplog):
    monkeypatch.setattr(ratelimit, "cache", Recording(cache, fail=True))
    with caplog.at_level(logging.WARNING, logger="experts.ratelimit"):
        assert ratelimit.check(key, 1) == 0
        assert ratelimit.check(key, 1) == 0
    messages = [(r.levelno, r.getMessage(), r.exc_info and r.exc_info[0]) for r in caplog.records]
    assert messages == [(logging.WARNING, "rate limit not checked: the cache is unreachable", ConnectionError)] * 2


def test_a_cost_counts_that_many_and_a_first_costly_request_starts_the_window_with_it(clock, key):
    """The token budget charges each request what it asks for, in the same window arithmetic."""
    assert ratelimit.check(key, 100, cost=60) == 0
    assert ratelimit.check(key, 100, cost=40) == 0  # exactly the budget
    assert ratelimit.check(key, 100, cost=1) > 0
