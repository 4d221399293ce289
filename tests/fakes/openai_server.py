"""A real local HTTP server that speaks OpenAI's chat-completions protocol, for tests and benchmarks.

    with FakeOpenAI(api_key="sk-test") as fake:
        fake.behaviour.update(mode="error", status=503, fail_times=1)
        ... point a client at fake.base_url ...
        fake.requests[-1]["body"]

Behaviour (mutable between requests): mode is one of
  ok                 stream/answer normally
  error              reply `status` with an OpenAI error body (and Retry-After when `retry_after` is set)
  slow               wait delay_s, then answer normally
  hang               accept the request and never answer (until the server stops)
  slow_first_token   send headers and the role chunk at once, then wait delay_s before the first token
  drop_midstream     send `drop_after` tokens, then cut the connection without finishing
fail_times=N applies the mode to the first N chat requests only, then answers "ok" (retry tests).
tokens: the reply tokens; default "Echo:" followed by the words of the last user message.
per_token_delay_s: pause between streamed tokens.  split_writes / keepalive_comments exercise SSE parsing.

HTTP/1.1 keep-alive with chunked streaming, one thread per connection, a deep listen backlog and
TCP_NODELAY, so ~100 concurrent streaming clients work and latency is not distorted by Nagle.
"""
from __future__ import annotations

import json
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers import free_port

DEFAULT_BEHAVIOUR = dict(mode="ok", status=500, delay_s=5.0, tokens=None, per_token_delay_s=0.0,
                         fail_times=None, drop_after=2, retry_after=None, error_message=None,
                         split_writes=False, keepalive_comments=False)


closed_port = free_port  # a local port with nothing listening: connections to it are refused


def _error_type(status: int) -> tuple[str, str | None]:
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status == 429:
        return "rate_limit_exceeded", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def _text(content) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: "FakeOpenAI"

    def handle_error(self, request, client_address):
        """Clients that hang up (closed pools, cancelled streams) are normal here; anything else is not."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # an idle keep-alive connection's thread ends after this

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._connections.add(self.connection)
        self.server.fake.connections_opened += 1

    def finish(self):
        self.server.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, *args):
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def _json(self, status: int, payload: dict, headers: dict | None = None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict | None = None):
        etype, code = _error_type(status)
        self._json(status, {"error": {"message": message, "type": etype, "param": None, "code": code}}, headers)

    def _chunk(self, data: bytes, split: bool = False):
        """One chunked-encoding chunk per write (TCP_NODELAY sends it at once); `split` cuts it in two."""
        pieces = [data[: len(data) // 2], data[len(data) // 2:]] if split and len(data) > 1 else [data]
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            if split:
                time.sleep(0.002)

    def _sse(self, payload, split: bool = False):
        body = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        self._chunk(f"data: {body}\n\n".encode(), split)

    # -- routes ---------------------------------------------------------------------------------
    def do_GET(self):
        fake = self.server.fake
        if not self._authorised():
            return
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [
                {"id": fake.model, "object": "model", "created": fake.created, "owned_by": "fake"}]})
        else:
            self._error(404, f"Unknown path {self.path}")

    def do_POST(self):
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        fake.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._error(404, f"Unknown path {self.path}")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error(400, "'messages' is a required property")
        b = fake._next_behaviour()
        mode = b["mode"]
        if mode == "error":
            headers = {"Retry-After": str(b["retry_after"])} if b["retry_after"] is not None else None
            return self._error(b["status"], b["error_message"] or f"fake upstream error {b['status']}", headers)
        if mode == "hang":
            fake._stopping.wait()
            self.close_connection = True
            return
        if mode == "slow":
            fake._stopping.wait(b["delay_s"])
        tokens, finish = fake._reply_tokens(body, b)
        if body.get("stream"):
            self._stream(body, b, tokens, finish)
        else:
            self._json(200, fake._completion(body, tokens, finish))

    def _authorised(self) -> bool:
        key = self.server.fake.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self._error(401, "Incorrect API key provided.")
            return False
        return True

    def _stream(self, body: dict, b: dict, tokens: list, finish: str):
        fake = self.server.fake
        usage_on = bool((body.get("stream_options") or {}).get("include_usage"))
        cid, created, model = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), body.get("model") or fake.model

        def chunk(delta, finish_reason=None):
            out = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "system_fingerprint": None,
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
            if usage_on:
                out["usage"] = None
            return out

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        split = b["split_writes"]
        try:
            self._sse(chunk({"role": "assistant", "content": "", "refusal": None}), split)
            if b["keepalive_comments"]:
                self._chunk(b": keep-alive\n\n")
            if b["mode"] == "slow_first_token":
                fake._stopping.wait(b["delay_s"])
            for i, tok in enumerate(tokens):
                if b["mode"] == "drop_midstream" and i == b["drop_after"]:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if i and b["per_token_delay_s"]:
                    time.sleep(b["per_token_delay_s"])
                self._sse(chunk({"content": tok if i == 0 else " " + tok}), split)
                if b["keepalive_comments"]:
                    self._chunk(b": ping\n\n")
            self._sse(chunk({}, finish), split)
            if usage_on:
                usage = fake._usage(body, tokens)
                self._sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "system_fingerprint": None, "choices": [], "usage": usage}, split)
            self._sse("[DONE]", split)
            self._chunk(b"")  # zero-length chunk: end of body
        except OSError:  # client went away
            self.close_connection = True


class FakeOpenAI:
    """Context manager: an OpenAI-compatible server on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, *, api_key: str = "", model: str = "fake-model", **behaviour):
        self.api_key = api_key
        self.model = model
        self.created = int(time.time())
        self.behaviour = dict(DEFAULT_BEHAVIOUR, **behaviour)
        self.requests: list[dict] = []
        self._chat_count = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set = set()
        self.connections_opened = 0  # TCP connections accepted: shows whether clients reuse keep-alive
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self, **behaviour):
        """Back to default behaviour (plus overrides) with no recorded requests."""
        with self._lock:
            self.behaviour = dict(DEFAULT_BEHAVIOUR, **behaviour)
            self.requests.clear()
            self._chat_count = 0

    def start(self) -> "FakeOpenAI":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self._server.shutdown()
        for conn in list(self._connections):  # wake threads idling on keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- helpers used by the handler ---------------------------------------------------------------
    def _next_behaviour(self) -> dict:
        with self._lock:
            self._chat_count += 1
            b = dict(self.behaviour)
        if b["fail_times"] is not None and self._chat_count > b["fail_times"]:
            b["mode"] = "ok"
        return b

    def _reply_tokens(self, body: dict, b: dict) -> tuple[list, str]:
        tokens = b["tokens"]
        if tokens is None:
            users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
            tokens = ["Echo:"] + (_text(users[-1].get("content")).split() if users else [])
        tokens = list(tokens)
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and limit < len(tokens):
            return tokens[:limit], "length"
        return tokens, "stop"

    @staticmethod
    def _usage(body: dict, tokens: list) -> dict:
        prompt = sum(len(_text(m.get("content")).split()) for m in body["messages"] if isinstance(m, dict))
        return {"prompt_tokens": prompt, "completion_tokens": len(tokens), "total_tokens": prompt + len(tokens)}

    def _completion(self, body: dict, tokens: list, finish: str) -> dict:
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model") or self.model, "system_fingerprint": None,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(tokens),
                                                     "refusal": None},
                             "logprobs": None, "finish_reason": finish}],
                "usage": self._usage(body, tokens)}
