"""A backend that runs a Hugging Face causal LM from a local directory, in-process.

A model loads once per (path, device) and stays in memory while a backend holds it: backends of one model share
it, and it is freed when the last one is dropped (e.g. the registry superseded it after a settings change).
Loading happens in `prepare`, before dispatch's timeouts start.  Generation runs in a worker thread and its
streamer hands text to the event loop with call_soon_threadsafe, so the loop never blocks on torch.
One generation at a time per model: CPU inference gets no faster in parallel, it only thrashes.
An abandoned stream (client gone, dispatch timeout) stops generation at the next token.
"""
from __future__ import annotations

import asyncio
import os
import threading
import weakref

from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, StoppingCriteria, \
    StoppingCriteriaList, TextIteratorStreamer

from .base import Backend, BackendConfig, BackendError, Delta, generation_settings, message_text

DEFAULT_MAX_TOKENS = 128
GENERATE_KEYS = frozenset(GenerationConfig().to_dict())  # the settings model.generate() accepts
_END = object()


class _Loaded:
    def __init__(self, tokenizer, model):
        self.tokenizer = tokenizer
        self.model = model
        self.lock = threading.Lock()  # one generation at a time


_models: weakref.WeakValueDictionary[tuple[str, str], _Loaded] = weakref.WeakValueDictionary()
_models_lock = threading.Lock()


def _key(path: str, device: str) -> tuple[str, str]:
    return os.path.realpath(path), device


def load(path: str, device: str = "cpu") -> _Loaded:
    """The tokenizer and model for (path, device): the one in memory if some holder keeps it, else loaded (blocking)."""
    key = _key(path, device)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            if not os.path.isdir(path):
                raise BackendError("the model directory does not exist", kind="config", detail=path)
            try:
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).to(device).eval()
            except Exception as exc:  # any failure to load is a configuration problem for the operator
                raise BackendError("cannot load the model", kind="config", detail=f"{path}: {exc}") from None
            loaded = _models[key] = _Loaded(tokenizer, model)
        return loaded


def build_prompt(tokenizer, messages: list[dict]) -> str:
    """The tokenizer's chat template when it has one, else a plain transcript ending in 'assistant:'."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m.get('role', 'user')}: {message_text(m)}" for m in messages]
    return "\n".join(lines + ["assistant:"])


class _LoopStreamer(TextIteratorStreamer):
    """TextIteratorStreamer whose finalised text goes to an asyncio queue on the consumer's loop."""

    def __init__(self, tokenizer, loop, queue: asyncio.Queue):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.loop, self.queue = loop, queue

    def on_finalized_text(self, text: str, stream_end: bool = False):
        if text:
            self._send(text)

    def _send(self, item):
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the consumer's loop is closed: nobody is listening any more
            pass


class _StopWhen(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        return self.event.is_set()


class TransformersBackend(Backend):
    def __init__(self, config: BackendConfig):
        super().__init__(config)
        if not config.model_path or not os.path.isdir(config.model_path):
            raise BackendError(f"expert {config.expert!r}: a transformers backend needs model_path: a local model "
                               f"directory; {config.model_path!r} does not exist", kind="config")
        # adopt the model if another backend already loaded it (a settings edit must not reload it); loads nothing
        self._loaded = _models.get(_key(config.model_path, config.device))

    def _model(self) -> _Loaded:
        """The model this backend holds, loaded on first use (blocking: call it in a worker thread)."""
        if self._loaded is None:
            self._loaded = load(self.config.model_path, self.config.device)
        return self._loaded

    async def prepare(self):
        if self._loaded is None:
            await asyncio.to_thread(self._model)

    def _encode(self, messages):
        """(model, input tensors) for `messages`: the chat template and tokenizer run in a worker thread too."""
        loaded = self._model()
        inputs = loaded.tokenizer(build_prompt(loaded.tokenizer, messages), return_tensors="pt").to(self.config.device)
        inputs.pop("token_type_ids", None)
        return loaded, inputs

    def _generate_kwargs(self, tokenizer, settings: dict) -> dict:
        """model.generate() arguments.  Settings transformers does not know (the OpenAI-only seed,
        presence_penalty, frequency_penalty) are ignored, so one expert's settings suit either backend kind."""
        kwargs = {k: v for k, v in settings["extra"].items() if k in GENERATE_KEYS}
        kwargs["max_new_tokens"] = settings["max_tokens"] or DEFAULT_MAX_TOKENS
        temperature = settings["temperature"]
        if temperature is not None:
            if temperature <= 0:
                kwargs["do_sample"] = False  # greedy: deterministic
            else:
                kwargs.update(do_sample=True, temperature=float(temperature))
        if settings["top_p"] is not None:
            kwargs["top_p"] = float(settings["top_p"])
        if kwargs.get("do_sample") is False:  # sampling knobs would only draw warnings
            for key in ("temperature", "top_p", "top_k"):
                kwargs.pop(key, None)
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
            kwargs["pad_token_id"] = tokenizer.eos_token_id
        return kwargs

    async def stream(self, messages, *, max_tokens=None, temperature=None, top_p=None, stop=None):
        cfg = self.config
        loaded, inputs = await asyncio.to_thread(self._encode, messages)
        settings = generation_settings(cfg, max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop)
        tokenizer, model = loaded.tokenizer, loaded.model
        n_prompt = int(inputs["input_ids"].shape[1])
        kwargs = self._generate_kwargs(tokenizer, settings)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        streamer = _LoopStreamer(tokenizer, loop, queue)
        cancel = threading.Event()
        result: dict = {}

        def run():
            try:
                with loaded.lock:
                    if not cancel.is_set():
                        out = model.generate(**inputs, **kwargs, streamer=streamer,
                                             stopping_criteria=StoppingCriteriaList([_StopWhen(cancel)]))
                        result["completion_tokens"] = int(out.shape[1]) - n_prompt
            except Exception as exc:  # surfaced to the consumer as a BackendError
                result["error"] = exc
            finally:
                streamer._send(_END)

        threading.Thread(target=run, name=f"generate-{cfg.expert}", daemon=True).start()
        stops = settings["stop"] or []
        hold = max((len(s) for s in stops), default=1) - 1  # text that may be the start of a stop string
        pending, finish, ended = "", None, False
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    ended = True
                    break
                pending += item
                cut = min((i for i in (pending.find(s) for s in stops) if i >= 0), default=-1)
                if cut >= 0:
                    pending, finish = pending[:cut], "stop"
                    cancel.set()
                    break
                ready = pending[:len(pending) - hold] if hold else pending
                if ready:
                    pending = pending[len(ready):]
                    yield Delta(ready)
        finally:
            cancel.set()
        if not ended:  # cut at a stop string: let the cancelled generation end so its tokens are counted
            await self._wait_done(queue)
        if "error" in result:
            exc = result["error"]
            raise BackendError(f"expert {cfg.expert!r}: generation failed ({type(exc).__name__})", kind="upstream",
                               detail=str(exc))
        produced = result.get("completion_tokens", 0)
        if finish is None:
            finish = "length" if produced >= kwargs["max_new_tokens"] else "stop"
        yield Delta(pending, finish, {"prompt_tokens": n_prompt, "completion_tokens": produced})

    @staticmethod
    async def _wait_done(queue: asyncio.Queue):
        while await queue.get() is not _END:
            pass
