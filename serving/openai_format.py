"""OpenAI chat-completions wire format: request validation, response and chunk shapes, errors.

Kept apart from the views so the shapes are testable and shared by streaming and non-streaming answers. Our extra
field ``coe`` (category, expert, fallback, decision id, simulated) rides along on the response and on the first chunk;
OpenAI clients ignore unknown fields and expose them (``completion.model_extra["coe"]`` in the Python client).
"""
import json
import time
from dataclasses import dataclass, field

from access.api import error_response, parse_json_object

ROLES = {"system", "developer", "user", "assistant", "tool"}


class ChatError(Exception):
    """An error answered in OpenAI's format: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status, message, *, type="invalid_request_error", code=None, param=None, headers=None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.headers = headers or {}

    def response(self):
        response = error_response(self.status, self.message, type=self.type, param=self.param, code=self.code)
        for name, value in self.headers.items():
            response[name] = value
        return response


@dataclass
class ChatRequest:
    model: str
    messages: list
    stream: bool = False
    include_usage: bool = False
    options: dict = field(default_factory=dict)  # max_tokens, temperature, top_p, stop


def _text(content, index):
    """Message content as text: a string, or a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ChatError(400, f"messages[{index}].content: only text parts are supported.",
                                param=f"messages[{index}].content")
            parts.append(part["text"])
        return "".join(parts)
    if content is None:
        return ""
    raise ChatError(400, f"messages[{index}].content must be a string or a list of text parts.",
                    param=f"messages[{index}].content")


def _number(data, name, low, high):
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ChatError(400, f"'{name}' must be a number from {low} to {high}.", param=name)
    return value


def parse_chat_request(body, max_bytes, max_tokens=1_000_000):
    """A validated ChatRequest, or ChatError; ``max_tokens`` caps what one request may ask for."""
    if len(body) > max_bytes:
        raise ChatError(413, f"Request body is {len(body)} bytes; the limit is {max_bytes} (COE_CHAT_MAX_BYTES).")
    try:
        data = parse_json_object(body)
    except ValueError as exc:
        raise ChatError(400, str(exc))
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ChatError(400, "'model' is required: 'coe' (routed) or an expert's name (GET /v1/models).",
                        param="model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ChatError(400, "'messages' must be a non-empty list.", param="messages")
    clean = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or message["role"] not in ROLES:
            raise ChatError(400, f"messages[{i}] needs a role: one of {', '.join(sorted(ROLES))}.",
                            param=f"messages[{i}].role")
        clean.append({"role": message["role"], "content": _text(message.get("content"), i)})
    if not any(m["role"] == "user" and m["content"].strip() for m in clean):
        raise ChatError(400, "'messages' needs at least one non-empty user message.", param="messages")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise ChatError(400, "'stream' must be true or false.", param="stream")
    if data.get("n", 1) != 1:
        raise ChatError(400, "Only n=1 is supported.", param="n")
    options = {"max_tokens": _number(data, "max_completion_tokens", 1, max_tokens)
               or _number(data, "max_tokens", 1, max_tokens),
               "temperature": _number(data, "temperature", 0, 2), "top_p": _number(data, "top_p", 0, 1)}
    stop = data.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
            raise ChatError(400, "'stop' must be a string or a list of up to 4 strings.", param="stop")
        options["stop"] = stop
    stream_options = data.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise ChatError(400, "'stream_options' must be an object, e.g. {\"include_usage\": true}.",
                        param="stream_options")
    include_usage = bool(stream and stream_options and stream_options.get("include_usage"))
    return ChatRequest(model, clean, stream, include_usage, {k: v for k, v in options.items() if v is not None})


def completion(completion_id, model, text, finish_reason, usage, coe):
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish_reason, "logprobs": None}],
            "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}, "coe": coe}


def chunk(completion_id, model, created, *, content=None, role=None, finish_reason=None, coe=None, usage=None,
          choices=True):
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
            if choices else []}
    if coe is not None:
        body["coe"] = coe
    if usage is not None:
        body["usage"] = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
    return body


def sse(payload):
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def coe_headers(coe):
    headers = {"X-CoE-Expert": coe["expert"], "X-CoE-Simulated": "1" if coe["simulated"] else "0"}
    if coe.get("category"):
        headers["X-CoE-Category"] = coe["category"]
    if coe.get("decision_id"):
        headers["X-CoE-Decision"] = str(coe["decision_id"])
    if coe.get("fallback_reason"):
        headers["X-CoE-Fallback-Reason"] = coe["fallback_reason"]
    return headers
