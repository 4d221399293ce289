"""Retries, fallback and circuit breaking around backends: used by the chat endpoint and batch answering.

Candidates are tried in order (primary first).  A candidate whose breaker is open is skipped; otherwise
it gets 1 + max_retries attempts, with exponential backoff and jitter between retryable failures (at
least the upstream's Retry-After).  An attempt succeeds when its first delta arrives within
first_token_timeout_s; from then on the answer belongs to that expert: a later failure is raised from
`Opened.rest` and never retried or handed to a fallback, because the client has already seen text.
Failures count against the expert's breaker only when they are the expert's own: never a bad_request, and never a
timeout of a request that asked for more than the answer length the expert's timeouts are sized for
(``config.normal_max_tokens``) — otherwise one caller with an absurd ``max_tokens`` could open a breaker for everyone.
Each failure's ``detail`` (what the upstream said, where it lives) goes to the log, never to the caller.  A candidate given
as (name, BackendError) — its backend could not even be built — is one failed attempt, its breaker untouched,
so the fallback reason and the attempts say why the next candidate answered.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

from .base import Backend, BackendError, Completion, Delta
from .breaker import BreakerBoard

MAX_BACKOFF_S = 5.0
log = logging.getLogger(__name__)


def caller_caused(error: BackendError, config, gen_kwargs: dict) -> bool:
    """Did the caller, not the expert, cause ``error``? (Then it says nothing about the expert's health.)"""
    if error.kind == "bad_request":
        return True
    asked = gen_kwargs.get("max_tokens")
    return error.kind == "timeout" and asked is not None and asked > config.normal_max_tokens


def _judge(breaker, error: BackendError, name: str, config, gen_kwargs: dict):
    """Count ``error`` against the expert's breaker unless the caller caused it; log what the upstream said."""
    log.warning("expert %s failed (%s): %s", name, error.kind, error.detail or error.message)
    if caller_caused(error, config, gen_kwargs):
        breaker.release()
    else:
        breaker.record_failure()


@dataclass
class Attempt:
    expert: str
    ok: bool
    error_kind: str = ""
    error: str = ""
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict:
        return {"expert": self.expert, "ok": self.ok, "error_kind": self.error_kind, "error": self.error,
                "elapsed_ms": round(self.elapsed_ms, 3)}


@dataclass
class Opened:
    """A stream that has produced its first delta.  `ttft_ms` counts from the start of open_stream,
    so it includes retries, backoff and fallback: what the client waited.  A caller that stops reading
    early (client disconnected) should `await opened.rest.aclose()` to free the upstream at once."""

    expert: str
    fallback_reason: str
    attempts: list[Attempt]
    first: Delta
    ttft_ms: float
    rest: AsyncIterator[Delta] = field(repr=False)


class AllExpertsFailed(BackendError):
    def __init__(self, attempts: list[Attempt]):
        self.attempts = attempts
        super().__init__(_summary(attempts), kind="unavailable")


def _summary(attempts: list[Attempt]) -> str:
    if not attempts:
        return "no expert to try"
    parts = []
    for a in attempts:
        detail = f": {a.error}" if a.error and a.error_kind != "breaker_open" else ""
        parts.append(f"{a.expert} {a.error_kind}{detail}")
    return "all experts failed: " + "; ".join(parts)


def backoff_delay(retry: int, base: float, retry_after: float | None = None) -> float:
    """Delay before retry number `retry` (0-based): base * 2**retry, jittered to 50-100 % so clients
    that failed together do not retry together; never shorter than the upstream's Retry-After."""
    delay = min(MAX_BACKOFF_S, base * 2 ** retry) * random.uniform(0.5, 1.0)
    return max(delay, retry_after or 0.0)


class _Rest:
    """The remaining deltas of an opened stream; a mid-stream failure of the expert's own still counts against its
    breaker. ``aclose()`` closes the upstream whether or not reading began (an async generator closed before its
    first step never runs its ``finally``, which left the upstream open when a client went away after one chunk)."""

    def __init__(self, name: str, agen, breakers: BreakerBoard, config, gen_kwargs: dict):
        self._agen = agen
        self._deltas = self._read(name, agen, breakers, config, gen_kwargs)

    @staticmethod
    async def _read(name, agen, breakers, config, gen_kwargs):
        try:
            async for delta in agen:
                yield delta
        except BackendError as exc:
            _judge(breakers.get(name), exc, name, config, gen_kwargs)
            raise
        finally:
            await agen.aclose()

    def __aiter__(self):
        return self

    def __anext__(self):
        return self._deltas.__anext__()

    async def aclose(self):
        await self._deltas.aclose()
        await self._agen.aclose()  # a no-op once the reader above closed it


async def _first_success(candidates, start_attempt, *, breakers: BreakerBoard, max_retries, backoff_s, sleep,
                         gen_kwargs):
    """The retry / breaker / fallback loop shared by streaming and whole answers (see the module docstring).
    ``start_attempt(name, backend)`` → awaitable of the attempt's result; returns (index, name, result, attempts,
    fallback reason, ms to success)."""
    start = time.perf_counter()
    attempts: list[Attempt] = []
    fallback_reason = ""
    for index, (name, backend) in enumerate(candidates):
        if isinstance(backend, BackendError):
            log.warning("expert %s cannot be built (%s): %s", name, backend.kind, backend.detail or backend.message)
            attempts.append(Attempt(name, False, backend.kind, backend.message))
            if index == 0:
                fallback_reason = backend.kind
            continue
        breaker = breakers.get(name)
        cfg = backend.config
        retries = cfg.max_retries if max_retries is None else max_retries
        base = cfg.backoff_s if backoff_s is None else backoff_s
        reason = ""
        for attempt in range(1 + max(0, retries)):
            if not breaker.allow():
                if attempt == 0:  # mid-retry the breaker may open; the last error then stays the reason
                    attempts.append(Attempt(name, False, "breaker_open", "circuit breaker is open"))
                    reason = "breaker_open"
                break
            t0 = time.perf_counter()
            try:
                result = await start_attempt(name, backend)
            except BackendError as exc:
                error = exc
            except BaseException:  # cancelled (client went away) or a bug: not the expert's health
                breaker.release()
                raise
            else:
                breaker.record_success()
                now = time.perf_counter()
                attempts.append(Attempt(name, True, elapsed_ms=(now - t0) * 1e3))
                return index, name, result, attempts, fallback_reason if index else "", (now - start) * 1e3
            attempts.append(Attempt(name, False, error.kind, error.message, (time.perf_counter() - t0) * 1e3))
            reason = error.kind
            _judge(breaker, error, name, cfg, gen_kwargs)
            if not error.retryable or attempt == retries:
                break
            await sleep(backoff_delay(attempt, base, error.retry_after))
        if index == 0:
            fallback_reason = reason
    raise AllExpertsFailed(attempts)


async def open_stream(candidates: list[tuple[str, Backend | BackendError]], messages, *, breakers: BreakerBoard,
                      max_retries: int | None = None, backoff_s: float | None = None, sleep=asyncio.sleep,
                      **gen_kwargs) -> Opened:
    """Start streaming from the first candidate that produces a first delta; see the module docstring.
    Raises AllExpertsFailed (kind "unavailable") when none does."""
    async def first_delta(name, backend):
        await backend.prepare()  # outside the deadline: loading a model is not a slow first token
        agen = backend.stream(messages, **gen_kwargs)
        try:
            async with asyncio.timeout(backend.config.first_token_timeout_s):
                return agen, await anext(agen)
        except (BackendError, TimeoutError, StopAsyncIteration) as exc:
            await agen.aclose()
            raise _as_backend_error(exc, name, backend.config.first_token_timeout_s) from None
        except BaseException:
            await agen.aclose()
            raise

    index, name, (agen, first), attempts, reason, ms = await _first_success(
        candidates, first_delta, breakers=breakers, max_retries=max_retries, backoff_s=backoff_s, sleep=sleep,
        gen_kwargs=gen_kwargs)
    return Opened(name, reason, attempts, first, ms,
                  _Rest(name, agen, breakers, candidates[index][1].config, gen_kwargs))


async def complete_first(candidates: list[tuple[str, Backend | BackendError]], messages, *, breakers: BreakerBoard,
                         max_retries: int | None = None, backoff_s: float | None = None, sleep=asyncio.sleep,
                         **gen_kwargs) -> tuple[Opened, Completion]:
    """The non-streaming twin of open_stream: each attempt is one whole ``complete()`` call (bounded by the
    backend's ``timeout_s`` once it is prepared), with the same retry, breaker and fallback rules. For callers
    that want the whole answer (the endpoint without ``stream``, batches), so an upstream is asked exactly the way
    the client asked.
    The returned Opened's ``first`` holds the whole answer, ``ttft_ms`` the time to it, and ``rest`` is empty."""
    async def whole(name, backend):
        await backend.prepare()
        try:
            async with asyncio.timeout(backend.config.timeout_s):
                return await backend.complete(messages, **gen_kwargs)
        except TimeoutError:
            raise BackendError(f"expert {name!r} gave no answer within {backend.config.timeout_s:g} s",
                               kind="timeout", retryable=True) from None

    _, name, done, attempts, reason, ms = await _first_success(
        candidates, whole, breakers=breakers, max_retries=max_retries, backoff_s=backoff_s, sleep=sleep,
        gen_kwargs=gen_kwargs)
    return Opened(name, reason, attempts, Delta(done.text, done.finish_reason, done.usage), ms, _empty()), done


async def _empty():
    return
    yield  # an async generator with nothing in it


def _as_backend_error(exc: BaseException, name: str, first_token_timeout_s: float) -> BackendError:
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, TimeoutError):
        return BackendError(f"expert {name!r} sent no first token within {first_token_timeout_s:g} s",
                            kind="timeout", retryable=True)
    return BackendError(f"expert {name!r} ended its stream without any output", kind="upstream", retryable=True)

