"""The contract every expert backend meets: config, streamed deltas, one error type, a registry.

Pure Python (no Django): the endpoint, batch answering and benchmarks all drive backends directly.
Backends raise `BackendError` and never retry; `dispatch` owns retries, fallback and breakers.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import AsyncIterator

ERROR_KINDS = ("timeout", "connection", "upstream", "bad_request", "unavailable", "config")


@dataclass(frozen=True)
class BackendConfig:
    """How to reach (or simulate) one expert.  `api_key` is the resolved secret: kept out of repr."""

    kind: str                      # "openai" | "transformers" | "simulated"
    expert: str                    # our expert name (for messages)
    model: str = ""                # upstream model name (openai)
    base_url: str = ""             # e.g. http://127.0.0.1:8001/v1 (openai)
    api_key: str = field(default="", repr=False)
    timeout_s: float = 60.0        # total per attempt
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 30.0   # until the first streamed content token
    max_retries: int = 2           # retries after the first attempt, only before any token was produced
    backoff_s: float = 0.25        # exponential backoff base, with jitter
    model_path: str = ""           # transformers: local directory
    device: str = "cpu"
    generation: dict = field(default_factory=dict, hash=False)  # defaults: max_new_tokens, temperature, ...
    parameters: float = 0.0        # simulated: total params
    bytes_per_parameter: float = 2.0
    preset: str = "sn40l-16"       # simulated: hwsim machine preset name
    time_scale: float = 1.0        # simulated: wall seconds per simulated second (0 = no sleeping)
    normal_max_tokens: int = 1024  # the answer length the timeouts are sized for (breakers: see dispatch)


class BackendError(Exception):
    """A failed call to an expert.  `retryable` is only meaningful before the first token;
    `retry_after` (seconds, already capped) is the upstream's Retry-After hint, if any.
    `message` may reach API callers, so it never carries what the upstream said or where it lives (an error body or
    URL would make the product an echo of internal hosts); `detail` has that, for the server log only."""

    def __init__(self, message, *, kind, status=None, retryable=False, retry_after=None, detail=""):
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown BackendError kind {kind!r}; kinds: {ERROR_KINDS}")
        super().__init__(message)
        self.message = str(message)
        self.detail = str(detail)
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after

    def __repr__(self):
        return f"BackendError({self.message!r}, kind={self.kind!r}, status={self.status!r})"


@dataclass
class Delta:
    """A piece of streamed output; the last one of a stream carries finish_reason and usage."""

    text: str = ""
    finish_reason: str | None = None
    usage: dict | None = None      # {"prompt_tokens", "completion_tokens"}


@dataclass
class Completion:
    text: str
    finish_reason: str
    usage: dict


def count_tokens(text: str) -> int:
    """Whitespace token estimate, for usage when the upstream reports none."""
    return len(text.split())


def message_text(message: dict) -> str:
    """A chat message's text; OpenAI also allows content as a list of {"type": "text", "text"} parts."""
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def prompt_tokens(messages: list[dict]) -> int:
    return sum(count_tokens(message_text(m)) for m in messages)


def estimated_usage(messages: list[dict], text: str) -> dict:
    """Usage counted on our side, for answers whose backend reported none."""
    return {"prompt_tokens": prompt_tokens(messages), "completion_tokens": count_tokens(text)}


def generation_settings(config: BackendConfig, *, max_tokens=None, temperature=None, top_p=None,
                        stop=None) -> dict:
    """Call arguments over config.generation defaults (which may say max_new_tokens or max_tokens).
    Returns max_tokens, temperature, top_p (each None when nobody set it: the backend picks its own
    default), stop (a list or None) and `extra`: the remaining generation keys."""
    gen = dict(config.generation)
    defaults = {k: gen.pop(k, None) for k in ("max_new_tokens", "max_tokens", "temperature", "top_p", "stop")}
    if max_tokens is None:
        max_tokens = defaults["max_tokens"] or defaults["max_new_tokens"]
    stop = stop if stop is not None else defaults["stop"]
    return {
        "max_tokens": int(max_tokens) if max_tokens is not None else None,
        "temperature": temperature if temperature is not None else defaults["temperature"],
        "top_p": top_p if top_p is not None else defaults["top_p"],
        "stop": [stop] if isinstance(stop, str) else (list(stop) if stop else None),
        "extra": gen,
    }


class Backend:
    """Abstract expert backend.  Subclasses implement `stream` as an async generator."""

    def __init__(self, config: BackendConfig):
        self.config = config

    def stream(self, messages: list[dict], *, max_tokens=None, temperature=None, top_p=None,
               stop=None) -> AsyncIterator[Delta]:
        raise NotImplementedError

    async def complete(self, messages: list[dict], **kwargs) -> Completion:
        parts, last = [], Delta()
        async for delta in self.stream(messages, **kwargs):
            parts.append(delta.text)
            last = delta
        text = "".join(parts)
        usage = last.usage or estimated_usage(messages, text)
        return Completion(text, last.finish_reason or "stop", usage)

    async def prepare(self):
        """Get ready to answer (e.g. load a model); dispatch awaits it before its timeouts start, so a cold start
        is not mistaken for a slow expert.  The default has nothing to prepare."""

    def __repr__(self):
        return f"<{type(self).__name__} {self.config.expert!r}>"


# kind -> "module:Class", imported on first use so that e.g. torch loads only for local models
BACKENDS = {
    "openai": "openai_http:OpenAIBackend",
    "transformers": "local_transformers:TransformersBackend",
    "simulated": "simulated:SimulatedBackend",
}


def make_backend(config: BackendConfig) -> Backend:
    """A backend for `config.kind`.  Bad configuration raises BackendError(kind="config")."""
    target = BACKENDS.get(config.kind)
    if target is None:
        raise BackendError(f"expert {config.expert!r}: unknown backend kind {config.kind!r}; "
                           f"kinds: {', '.join(BACKENDS)}", kind="config")
    module, cls = target.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)(config)
