"""Backend for OpenAI-compatible servers (vLLM, TGI, llama.cpp server, OpenAI itself), streamed over SSE.

No retries here: a failed attempt raises BackendError with `retryable` set, and `dispatch.open_stream`
retries (only before the first token), backs off (honouring `retry_after`), and falls back.

Timeouts per attempt: `connect_timeout_s` to open a connection, `first_token_timeout_s` from sending
the request to the first content token (headers and role-only chunks do not count), `timeout_s` for
the whole attempt.  They are enforced with asyncio deadlines around each read, never across a `yield`,
so a slow consumer is not mistaken for a slow upstream.

One pooled httpx.AsyncClient per running event loop (a client cannot cross loops), so keep-alive
connections are reused across requests and backends: a new TCP connection per request would cost
more than our whole latency budget.
"""
from __future__ import annotations

import asyncio
import json
import threading
import weakref
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from .base import Backend, BackendConfig, BackendError, Completion, Delta, estimated_usage, generation_settings

RETRY_AFTER_CAP_S = 10.0
DRAIN_S = 1.0  # how long to wait for the body to end after [DONE]
POOL_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=128, keepalive_expiry=60.0)
# config.generation keys forwarded to the upstream besides max_tokens/temperature/top_p/stop; the last
# three are vLLM/TGI extensions, so only an operator who sets them sends them
PASS_THROUGH = ("presence_penalty", "frequency_penalty", "seed", "top_k", "min_p", "repetition_penalty")

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()  # Celery threads each run their own loop beside the ASGI one


def shared_client() -> httpx.AsyncClient:
    """The running loop's pooled client (created on first use)."""
    loop = asyncio.get_running_loop()
    with _clients_lock:
        client = _clients.get(loop)
        if client is None or client.is_closed:
            client = _clients[loop] = httpx.AsyncClient(limits=POOL_LIMITS)
    return client


async def aclose_shared_client():
    """Close the running loop's pooled client, e.g. on ASGI lifespan shutdown or at the end of a test."""
    with _clients_lock:
        client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


class SSEParser:
    """Server-sent events, fed one line at a time (line endings stripped).  `data:` lines accumulate
    until a blank line ends the event; comments (`:` keep-alives) and other fields are ignored."""

    def __init__(self):
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """The event's data when `line` completes an event, else None."""
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def flush(self) -> str | None:
        """Data of an event left unterminated when the stream ended."""
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data


async def _sse_data(response: httpx.Response):
    parser = SSEParser()
    async for line in response.aiter_lines():
        data = parser.feed(line)
        if data is not None:
            yield data
    data = parser.flush()
    if data is not None:
        yield data


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def _upstream_message(body: bytes) -> str:
    """The message of an OpenAI-format error body, else a short excerpt of the body."""
    try:
        data = json.loads(body)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
    except ValueError:
        pass
    return body[:300].decode("utf-8", "replace").strip()


class OpenAIBackend(Backend):
    """Streams `/chat/completions` from an OpenAI-compatible server."""

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        if not config.base_url.startswith(("http://", "https://")):
            raise BackendError(f"expert {config.expert!r}: an openai backend needs base_url starting with http:// or "
                               f"https:// (e.g. http://vllm:8000/v1)", kind="config", detail=repr(config.base_url))
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.timeout = httpx.Timeout(connect=config.connect_timeout_s, read=config.timeout_s,
                                     write=config.timeout_s, pool=config.timeout_s)

    def _body(self, messages, stream: bool, **kwargs) -> dict:
        settings = generation_settings(self.config, **kwargs)
        body = {"model": self.config.model, "messages": messages, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        for key in ("max_tokens", "temperature", "top_p", "stop"):
            if settings[key] is not None:
                body[key] = settings[key]
        body.update({k: v for k, v in settings["extra"].items() if k in PASS_THROUGH})
        return body

    def _transport_error(self, exc: Exception, *, streaming: bool = False, retryable: bool = True) -> BackendError:
        name, detail = self.config.expert, f"{self.url}: {type(exc).__name__}: {exc}"
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return BackendError(f"cannot connect to expert {name!r}", kind="connection", retryable=True, detail=detail)
        if isinstance(exc, httpx.TimeoutException):
            return BackendError(f"expert {name!r} timed out: {type(exc).__name__}", kind="timeout",
                                retryable=retryable, detail=detail)
        what = "the stream broke" if streaming else "the request failed"
        return BackendError(f"expert {name!r}: {what} ({type(exc).__name__})", kind="connection",
                            retryable=retryable, detail=detail)

    def _status_error(self, status: int, body: bytes, retry_after: str | None) -> BackendError:
        """The upstream's error, without its body (logged as ``detail``): a caller must not read what an upstream —
        or an internal host a base URL points at — answered."""
        name, detail = self.config.expert, f"{self.url} answered HTTP {status}: {_upstream_message(body)}"
        if status == 429 or status >= 500:
            return BackendError(f"expert {name!r} answered HTTP {status}", kind="upstream", status=status,
                                retryable=True, retry_after=_retry_after(retry_after), detail=detail)
        if status in (401, 403):  # our key for the upstream is wrong or missing: the operator's to fix, not the caller's
            return BackendError(f"expert {name!r} refused our credentials (HTTP {status})", kind="config",
                                status=status, detail=detail)
        if status < 400:  # a redirect: never followed (it could lead anywhere), so the expert is misconfigured
            return BackendError(f"expert {name!r} answered with a redirect (HTTP {status}), which is not followed",
                                kind="config", status=status, detail=detail)
        return BackendError(f"expert {name!r} refused the request (HTTP {status})", kind="bad_request",
                            status=status, detail=detail)

    def _usage(self, usage, messages, text: str) -> dict:
        if isinstance(usage, dict) and "completion_tokens" in usage:
            return {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
                    "completion_tokens": int(usage["completion_tokens"])}
        return estimated_usage(messages, text)

    async def stream(self, messages, *, max_tokens=None, temperature=None, top_p=None, stop=None):
        cfg = self.config
        body = self._body(messages, True, max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop)
        client = shared_client()
        loop = asyncio.get_running_loop()
        end = loop.time() + cfg.timeout_s
        first_end = min(end, loop.time() + cfg.first_token_timeout_s)
        request = client.build_request("POST", self.url, json=body, timeout=self.timeout,
                                       headers={**self.headers, "Accept": "text/event-stream"})
        try:
            async with asyncio.timeout_at(first_end):
                response = await client.send(request, stream=True)
                if response.status_code >= 300:
                    try:
                        raw = await response.aread()
                    finally:
                        await response.aclose()
                    raise self._status_error(response.status_code, raw, response.headers.get("retry-after"))
        except TimeoutError:
            raise BackendError(f"expert {cfg.expert!r} sent no first token within {cfg.first_token_timeout_s:g} s",
                               kind="timeout", retryable=True) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

        parts: list[str] = []
        finish = usage = None
        done = False
        events = _sse_data(response)
        try:
            while True:
                try:
                    async with asyncio.timeout_at(end if parts else first_end):
                        data = await anext(events, None)
                except TimeoutError:
                    limit = f"finished within {cfg.timeout_s:g} s" if parts else \
                        f"sent a first token within {cfg.first_token_timeout_s:g} s"
                    raise BackendError(f"expert {cfg.expert!r} never {limit}", kind="timeout",
                                       retryable=not parts) from None
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc, streaming=True, retryable=not parts) from exc
                if data is None:
                    break
                if data.strip() == "[DONE]":
                    done = True
                    await self._drain(events, end)
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise BackendError(f"expert {cfg.expert!r} sent a malformed chunk", kind="upstream",
                                       retryable=not parts, detail=repr(data[:300])) from None
                if chunk.get("error"):
                    raise BackendError(f"expert {cfg.expert!r} failed mid-stream", kind="upstream",
                                       retryable=not parts, detail=_upstream_message(data.encode()))
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or ():
                    if choice.get("index", 0) != 0:
                        continue
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        parts.append(content)
                        yield Delta(content)
                    finish = choice.get("finish_reason") or finish
            if not done and finish is None:
                raise BackendError(f"expert {cfg.expert!r} closed the stream before it finished",
                                   kind="connection", retryable=not parts)
            yield Delta("", finish or "stop", self._usage(usage, messages, "".join(parts)))
        finally:
            await events.aclose()
            await response.aclose()

    @staticmethod
    async def _drain(events, end: float):
        """Read the (normally empty) rest of the body after [DONE]: a response closed unread cannot
        go back to the keep-alive pool, and reconnecting per request would dominate our latency."""
        try:
            async with asyncio.timeout_at(min(end, asyncio.get_running_loop().time() + DRAIN_S)):
                async for _ in events:
                    pass
        except (TimeoutError, httpx.HTTPError):
            pass

    async def complete(self, messages, *, max_tokens=None, temperature=None, top_p=None, stop=None) -> Completion:
        """One non-streamed request (stream=false), within `timeout_s`."""
        cfg = self.config
        body = self._body(messages, False, max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop)
        try:
            async with asyncio.timeout(cfg.timeout_s):
                response = await shared_client().post(self.url, json=body, headers=self.headers,
                                                      timeout=self.timeout)
        except TimeoutError:
            raise BackendError(f"expert {cfg.expert!r} did not answer within {cfg.timeout_s:g} s", kind="timeout",
                               retryable=True) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 300:
            raise self._status_error(response.status_code, response.content, response.headers.get("retry-after"))
        try:
            data = response.json()
            choice = data["choices"][0]
            text = (choice.get("message") or {}).get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise BackendError(f"expert {cfg.expert!r} sent a malformed completion", kind="upstream",
                               retryable=True, detail=repr(response.text[:300])) from None
        return Completion(text, choice.get("finish_reason") or "stop", self._usage(data.get("usage"), messages, text))
