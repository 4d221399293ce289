"""The per-user limits' rules against the real configured cache (LocMem embedded, Redis with REDIS_URL), on a fake
clock: the limit itself, the fixed one-minute window, what Retry-After says, the key and its expiry, several limits
counted together in one round trip, the process-wide cache instance, and what happens when the cache misbehaves.
Written to kill mutants of serving/ratelimit.py (scripts/mutation.sh ratelimit).
"""
import logging
import threading
import types
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache

from serving import ratelimit


@pytest.fixture
def clock(monkeypatch):
    """Pin the limiter's clock: ``clock.now`` is what time.time() returns inside serving.ratelimit."""
    state = types.SimpleNamespace(now=1_000_040.5)  # 20.5 s into minute 16667 (which starts at 1,000,020)
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(time=lambda: state.now))
    return state


@pytest.fixture
def key():
    """A key no other test (or earlier run against a shared Redis) has counted."""
    return f"user:test-{uuid.uuid4().hex}"


def check(key, per_minute, cost=1):
    """One limit: its Retry-After (0 = allowed)."""
    return ratelimit.check([(key, per_minute, cost)])[0]


class Recording:
    """A cache without pipelines (LocMem's API) that delegates to the real cache and records what it was asked."""

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


@pytest.fixture
def recording(monkeypatch):
    """The limiter counts through a Recording of the real cache."""
    rec = Recording(cache)
    monkeypatch.setattr(ratelimit, "counters", lambda: rec)
    return rec


def test_exactly_the_limit_is_allowed_and_one_more_is_refused(clock, key):
    assert [check(key, 3) for _ in range(3)] == [0, 0, 0]
    assert check(key, 3) == 40  # 39.5 s left in the minute: rounded down, plus one
    assert check(key, 3) == 40  # refused calls still count; the answer does not change


def test_limit_of_one(clock, key):
    assert check(key, 1) == 0
    assert check(key, 1) > 0


@pytest.mark.parametrize("per_minute", [0, -5])
def test_zero_or_negative_limit_turns_limiting_off_and_counts_nothing(clock, key, recording, per_minute):
    assert all(check(key, per_minute) == 0 for _ in range(50))
    assert recording.calls == []


def test_a_new_minute_starts_a_new_count(clock, key):
    clock.now = 1_000_019.999  # 59.999 s into minute 16666
    assert check(key, 1) == 0
    assert check(key, 1) == 1  # 0.001 s left: never less than one second
    clock.now = 1_000_020.0  # first instant of the next minute
    assert check(key, 1) == 0
    assert check(key, 1) == 61  # a whole minute left: 60 s, plus one


def test_retry_after_counts_down_through_the_minute(clock, key):
    base = 1_000_020.0
    check(key, 1)
    answers = {}
    for into in (0.0, 0.4, 30.0, 58.6, 59.0):
        clock.now = base + into
        answers[into] = check(key, 1)
    assert answers == {0.0: 61, 0.4: 60, 30.0: 31, 58.6: 2, 59.0: 2}


def test_keys_are_counted_separately(clock, key):
    other = key + "-other"
    assert check(key, 1) == 0
    assert check(key, 1) > 0
    assert check(other, 1) == 0


def test_the_counter_is_named_by_key_and_minute_and_outlives_its_minute(clock, key, recording):
    check(key, 5)
    name = f"ratelimit:{key}:16667"
    assert recording.calls == [("add", name, 0, 90), ("incr", name, 1)]
    assert cache.get(name) == 1


def test_key_expiring_between_add_and_incr_starts_the_window_at_one(clock, key, monkeypatch):
    dropping = Recording(cache, drop_after_add=True)
    monkeypatch.setattr(ratelimit, "counters", lambda: dropping)
    assert check(key, 2) == 0
    name = f"ratelimit:{key}:16667"
    assert dropping.calls[-1] == ("set", name, 1, 90)
    monkeypatch.setattr(ratelimit, "counters", lambda: cache)
    assert check(key, 2) == 0  # the set counted this request as the first: one more fits
    assert check(key, 2) > 0


def test_key_expiring_with_a_limit_of_one_still_allows_that_request(clock, key, monkeypatch):
    monkeypatch.setattr(ratelimit, "counters", lambda: Recording(cache, drop_after_add=True))
    assert check(key, 1) == 0


def test_unreachable_cache_lets_the_request_through_and_says_so(clock, key, monkeypatch, caplog):
    monkeypatch.setattr(ratelimit, "counters", lambda: Recording(cache, fail=True))
    with caplog.at_level(logging.WARNING, logger="serving.ratelimit"):
        assert check(key, 1) == 0
        assert ratelimit.check([(key, 1, 1), (key + "-b", 1, 1)]) == [0, 0]
    messages = [(r.levelno, r.getMessage(), r.exc_info and r.exc_info[0]) for r in caplog.records]
    assert messages == [(logging.WARNING, "rate limit not checked: the cache is unreachable", ConnectionError)] * 2


def test_a_cost_counts_that_many_and_a_first_costly_request_starts_the_window_with_it(clock, key):
    """The token budget charges each request what it asks for, in the same window arithmetic."""
    assert check(key, 100, cost=60) == 0
    assert check(key, 100, cost=40) == 0  # exactly the budget
    assert check(key, 100, cost=1) > 0


def test_several_limits_are_counted_together_and_answered_in_order(clock, key, recording):
    requests, tokens, off = key + ":requests", key + ":tokens", key + ":off"
    assert ratelimit.check([(requests, 2, 1), (off, 0, 1), (tokens, 100, 60)]) == [0, 0, 0]
    assert ratelimit.check([(requests, 2, 1), (off, 0, 1), (tokens, 100, 60)]) == [0, 0, 40]  # 120 tokens > 100
    assert ratelimit.check([(requests, 2, 1), (off, 0, 1), (tokens, 100, 1)]) == [40, 0, 40]
    names = [call[1] for call in recording.calls if call[0] == "incr"]
    assert names == [f"ratelimit:{requests}:16667", f"ratelimit:{tokens}:16667"] * 3  # the limit that is off: never
    assert (cache.get(f"ratelimit:{requests}:16667"), cache.get(f"ratelimit:{tokens}:16667")) == (3, 121)


def test_no_limit_on_asks_nothing_of_the_cache(clock, recording):
    assert ratelimit.check([("a", 0, 1), ("b", -1, 5)]) == [0, 0]
    assert ratelimit.check([]) == []
    assert recording.calls == []


def test_one_cache_instance_serves_every_thread_of_the_process():
    """Django's ``cache`` is one instance per request context under ASGI: a connection pool (and a new connection)
    per call. The counters use one instance for the process."""
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(ratelimit.counters())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1 and seen[0] is ratelimit.counters()


def test_a_new_cache_configuration_gets_a_new_instance(settings):
    before = ratelimit.counters()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "other"}}
    assert ratelimit.counters() is not before


class CountingClient:
    """A redis client that lets pipelines through and refuses single commands: each pipeline is one round trip."""

    def __init__(self, real, log):
        self.real, self.log = real, log

    def pipeline(self, transaction=True):
        pipe = self.real.pipeline(transaction=transaction)
        execute, log = pipe.execute, self.log

        def counted(*args, **kwargs):
            log.append(("execute", transaction, [c[0][0] for c in pipe.command_stack]))
            return execute(*args, **kwargs)

        pipe.execute = counted
        return pipe

    def __getattr__(self, name):
        raise AssertionError(f"a command outside the pipeline: {name}")


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis: runs in CI's PostgreSQL + Redis pass")
def test_with_redis_all_limits_are_one_atomic_round_trip(clock, key, monkeypatch):
    backend = ratelimit.counters()
    assert isinstance(backend, RedisCache)
    real, log = backend._cache.get_client, []
    monkeypatch.setattr(backend._cache, "get_client", lambda *a, **k: CountingClient(real(*a, **k), log))
    assert ratelimit.check([(key, 2, 1), (key + "-t", 100, 70)]) == [0, 0]
    assert ratelimit.check([(key, 2, 1), (key + "-t", 100, 70)]) == [0, 40]
    assert log == [("execute", True, ["SET", "INCRBY", "SET", "INCRBY"])] * 2  # MULTI/EXEC: one round trip
    monkeypatch.setattr(backend._cache, "get_client", real)
    assert cache.get(f"ratelimit:{key}:16667") == 2 and cache.get(f"ratelimit:{key}-t:16667") == 140
    assert 0 < real(write=True).ttl(backend.make_and_validate_key(f"ratelimit:{key}:16667")) <= 90
