"""Expert serving backends (pure Python, no Django): how the CoE actually calls the expert it chose.

    backend = make_backend(BackendConfig(kind="openai", expert="code", model="qwen", base_url="http://h:8001/v1"))
    opened = await open_stream([("code", backend), ("general", other)], messages, breakers=board)
    # opened.first, then `async for delta in opened.rest`

Kinds: "openai" (openai_http), "transformers" (local_transformers), "simulated" (simulated, hwsim timing).
Backend modules are imported on first use, so torch loads only where a local model is served.
"""
from .base import Backend, BackendConfig, BackendError, Completion, Delta, make_backend
from .breaker import BreakerBoard, CircuitBreaker
from .dispatch import AllExpertsFailed, Attempt, Opened, complete_first, open_stream

__all__ = [
    "AllExpertsFailed", "Attempt", "Backend", "BackendConfig", "BackendError", "BreakerBoard", "CircuitBreaker",
    "Completion", "Delta", "Opened", "complete_first", "make_backend", "open_stream",
]
