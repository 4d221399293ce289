"""Per-expert circuit breakers: stop sending traffic to an expert that keeps failing, probe it later.

closed --(failure_threshold consecutive failures)--> open --(reset_timeout_s)--> half_open
half_open allows ONE trial call: success closes the breaker, failure opens it again.  A trial whose
outcome is never recorded (its caller vanished) expires after another reset_timeout_s, so a breaker
cannot stay half-open forever.  Thread-safe: Celery threads and the ASGI loop may share a process.
"""
from __future__ import annotations

import threading
import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, reset_timeout_s: float = 30.0, *, clock=time.monotonic):
        if failure_threshold < 1 or reset_timeout_s < 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout_s >= 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0          # consecutive
        self._opened_at: float | None = None
        self._trial_at: float | None = None  # when the half-open trial was handed out
        self._total_failures = 0
        self._total_successes = 0

    def _advance(self, now: float):
        """open -> half_open once the reset timeout has passed (called with the lock held)."""
        if self._state == OPEN and now - self._opened_at >= self.reset_timeout_s:
            self._state, self._trial_at = HALF_OPEN, None

    @property
    def state(self) -> str:
        with self._lock:
            self._advance(self.clock())
            return self._state

    def allow(self) -> bool:
        """May a call go to this expert now?  In half_open, True for exactly one trial."""
        with self._lock:
            now = self.clock()
            self._advance(now)
            if self._state == CLOSED:
                return True
            if self._state == HALF_OPEN and (self._trial_at is None or now - self._trial_at >= self.reset_timeout_s):
                self._trial_at = now
                return True
            return False

    def record_success(self):
        with self._lock:
            self._total_successes += 1
            self._state, self._failures, self._opened_at, self._trial_at = CLOSED, 0, None, None

    def record_failure(self):
        with self._lock:
            now = self.clock()
            self._advance(now)
            self._total_failures += 1
            self._failures += 1
            if self._state == HALF_OPEN or (self._state == CLOSED and self._failures >= self.failure_threshold):
                self._state, self._opened_at, self._trial_at = OPEN, now, None

    def release(self):
        """The call said nothing about the expert's health (caller error, cancelled): free a half-open
        trial slot without changing state or counts."""
        with self._lock:
            self._trial_at = None

    def snapshot(self) -> dict:
        """JSON-safe view for dashboards and health endpoints."""
        with self._lock:
            now = self.clock()
            self._advance(now)
            opened_age = None if self._opened_at is None else round(now - self._opened_at, 3)
            retry_in = None
            if self._state == OPEN:
                retry_in = round(max(0.0, self.reset_timeout_s - (now - self._opened_at)), 3)
            return {"state": self._state, "failures": self._failures, "failure_threshold": self.failure_threshold,
                    "reset_timeout_s": self.reset_timeout_s, "opened_s_ago": opened_age, "retry_in_s": retry_in,
                    "trial_in_flight": self._state == HALF_OPEN and self._trial_at is not None,
                    "total_failures": self._total_failures, "total_successes": self._total_successes}


class BreakerBoard:
    """name -> CircuitBreaker, created on first use with the board's settings."""

    def __init__(self, failure_threshold: int = 5, reset_timeout_s: float = 30.0, *, clock=time.monotonic):
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = self._breakers[name] = CircuitBreaker(self.failure_threshold, self.reset_timeout_s,
                                                                clock=self.clock)
            return breaker

    def snapshot(self) -> dict:
        with self._lock:
            breakers = dict(self._breakers)
        return {name: b.snapshot() for name, b in sorted(breakers.items())}
