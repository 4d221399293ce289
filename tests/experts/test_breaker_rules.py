"""The circuit breaker's rules, one by one, on a fake clock: what opens it, how long it stays open, the single
half-open trial, what the snapshot says, and the board's settings. Written to kill mutants of
experts/backends/breaker.py (scripts/mutation.sh breaker): each test states one behaviour a bug would change."""
import pytest

from experts.backends.breaker import BreakerBoard, CircuitBreaker


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def opened(threshold=1, reset=10.0, clock=None):
    """A breaker opened by `threshold` consecutive failures at the clock's current time."""
    clock = clock or Clock()
    b = CircuitBreaker(failure_threshold=threshold, reset_timeout_s=reset, clock=clock)
    for _ in range(threshold):
        b.record_failure()
    assert b.state == "open"
    return b, clock


def test_defaults_are_five_failures_and_thirty_seconds():
    clock = Clock()
    b = CircuitBreaker(clock=clock)
    for _ in range(4):
        b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open"
    clock.now += 29.999
    assert b.state == "open"
    clock.now += 0.001
    assert b.state == "half_open"
    assert (b.failure_threshold, b.reset_timeout_s) == (5, 30.0)


@pytest.mark.parametrize("threshold, reset", [(0, 10), (1, -0.001), (0, -1)])
def test_invalid_settings_are_refused(threshold, reset):
    with pytest.raises(ValueError, match=r"^failure_threshold must be >= 1 and reset_timeout_s >= 0$"):
        CircuitBreaker(failure_threshold=threshold, reset_timeout_s=reset)


def test_smallest_valid_settings_are_accepted():
    b = CircuitBreaker(failure_threshold=1, reset_timeout_s=0)
    assert b.allow()
    b.record_failure()
    assert b.state == "half_open"  # a zero timeout probes at once


def test_threshold_counts_consecutive_failures_only():
    b = CircuitBreaker(failure_threshold=2, reset_timeout_s=10, clock=Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state == "closed" and b.allow()
    b.record_failure()
    assert b.state == "open" and not b.allow()


def test_open_breaker_refuses_until_exactly_the_reset_timeout():
    b, clock = opened(reset=10.0)
    clock.now += 9.999
    assert not b.allow() and b.state == "open"
    clock.now += 0.001
    assert b.allow()


def test_half_open_hands_out_one_trial_and_a_stale_trial_expires_after_the_timeout():
    b, clock = opened(reset=10.0)
    clock.now += 10
    assert b.allow()
    clock.now += 9.999
    assert not b.allow()  # the trial handed out 9.999 s ago is still in flight
    clock.now += 0.001
    assert b.allow()  # … and expires exactly one timeout after it was handed out
    assert not b.allow()


def test_successful_trial_closes_and_resets_everything():
    b, clock = opened(threshold=2, reset=10.0)
    clock.now += 10
    assert b.allow()
    b.record_success()
    snap = b.snapshot()
    assert (snap["state"], snap["failures"], snap["opened_s_ago"], snap["retry_in_s"], snap["trial_in_flight"]) == (
        "closed", 0, None, None, False)
    b.record_failure()
    assert b.state == "closed"  # the count restarted from zero: one failure is below the threshold of 2


def test_failed_trial_reopens_for_a_full_timeout_from_the_failure():
    b, clock = opened(threshold=3, reset=10.0)
    clock.now += 15
    assert b.allow()
    b.record_failure()  # a single failure in half_open reopens, whatever the threshold
    snap = b.snapshot()
    assert (snap["state"], snap["opened_s_ago"], snap["retry_in_s"], snap["trial_in_flight"]) == ("open", 0.0, 10.0,
                                                                                                   False)
    clock.now += 9.999
    assert not b.allow()
    clock.now += 0.001
    assert b.allow()


def test_late_failure_after_the_timeout_reopens_from_now():
    """A call let through while closed may report its failure after the breaker opened and its timeout passed:
    the breaker first moves to half_open, and the failure reopens it from the time it is recorded."""
    b, clock = opened(threshold=1, reset=10.0)
    clock.now += 12
    b.record_failure()
    snap = b.snapshot()
    assert (snap["state"], snap["opened_s_ago"], snap["retry_in_s"]) == ("open", 0.0, 10.0)
    assert snap["total_failures"] == 2


def test_late_failure_while_open_keeps_the_original_opening_time():
    b, clock = opened(threshold=1, reset=10.0)
    clock.now += 4
    b.record_failure()
    snap = b.snapshot()
    assert (snap["state"], snap["opened_s_ago"], snap["retry_in_s"], snap["failures"]) == ("open", 4.0, 6.0, 2)


def test_release_frees_the_trial_without_changing_state_or_counts():
    b, clock = opened(threshold=1, reset=10.0)
    clock.now += 10
    assert b.allow()
    before = b.snapshot()
    b.release()
    after = b.snapshot()
    assert before["trial_in_flight"] and not after["trial_in_flight"]
    assert {k: v for k, v in before.items() if k != "trial_in_flight"} == {
        k: v for k, v in after.items() if k != "trial_in_flight"}
    assert b.allow() and not b.allow()


def test_snapshot_reports_every_field_exactly():
    clock = Clock(100.0)
    b = CircuitBreaker(failure_threshold=2, reset_timeout_s=7.5, clock=clock)
    assert b.snapshot() == {"state": "closed", "failures": 0, "failure_threshold": 2, "reset_timeout_s": 7.5,
                            "opened_s_ago": None, "retry_in_s": None, "trial_in_flight": False,
                            "total_failures": 0, "total_successes": 0}
    b.record_success()
    b.record_success()
    b.record_failure()
    b.record_failure()
    clock.now += 1.23456
    assert b.snapshot() == {"state": "open", "failures": 2, "failure_threshold": 2, "reset_timeout_s": 7.5,
                            "opened_s_ago": 1.235, "retry_in_s": 6.265, "trial_in_flight": False,
                            "total_failures": 2, "total_successes": 2}
    clock.now = 107.5
    snap = b.snapshot()
    assert (snap["state"], snap["retry_in_s"], snap["trial_in_flight"]) == ("half_open", None, False)
    assert b.allow()
    assert b.snapshot()["trial_in_flight"] is True
    assert b.snapshot()["opened_s_ago"] == 7.5


def test_retry_in_is_never_negative_and_rounds_to_milliseconds():
    clock = Clock(0.0)
    b = CircuitBreaker(failure_threshold=1, reset_timeout_s=0.5, clock=clock)
    b.record_failure()
    clock.now = 0.1234
    assert b.snapshot()["retry_in_s"] == 0.377  # 0.3766 rounded to 3 places (4 places would give 0.3766)
    assert b.snapshot()["opened_s_ago"] == 0.123


def test_retry_in_at_the_last_moment_is_a_fraction_of_a_second():
    clock = Clock(0.0)
    b = CircuitBreaker(failure_threshold=1, reset_timeout_s=1.0, clock=clock)
    b.record_failure()
    clock.now = 0.9996
    assert b.snapshot()["retry_in_s"] == 0.0  # 0.0004 rounds to 0.0, not up to a floor of a second


def test_success_counts_add_one_per_success():
    b = CircuitBreaker(clock=Clock())
    for _ in range(3):
        b.record_success()
    assert b.snapshot()["total_successes"] == 3


def test_board_creates_each_breaker_once_with_its_settings_and_clock():
    clock = Clock()
    board = BreakerBoard(failure_threshold=3, reset_timeout_s=4.0, clock=clock)
    a = board.get("a")
    assert board.get("a") is a and board.get("b") is not a
    assert (a.failure_threshold, a.reset_timeout_s, a.clock) == (3, 4.0, clock)
    for _ in range(3):
        a.record_failure()
    clock.now += 1
    snap = board.snapshot()
    assert list(snap) == ["a", "b"]
    assert (snap["a"]["state"], snap["a"]["opened_s_ago"], snap["b"]["state"]) == ("open", 1.0, "closed")


def test_board_defaults_match_the_breaker_defaults():
    board = BreakerBoard()
    b = board.get("x")
    assert (board.failure_threshold, board.reset_timeout_s, b.failure_threshold, b.reset_timeout_s) == (5, 30.0, 5,
                                                                                                      30.0)


def test_board_snapshot_is_sorted_by_name():
    board = BreakerBoard(clock=Clock())
    for name in ("zeta", "alpha", "mid"):
        board.get(name)
    assert list(board.snapshot()) == ["alpha", "mid", "zeta"]
