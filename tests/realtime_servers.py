"""Real servers for the live-event tests: a private ``redis-server`` (never the machine's shared one) that a test may
kill and restart by PID, Daphne in a subprocess on the test database, and a minimal websocket client.

Daphne shares the test database through ``DATABASE_URL``: PostgreSQL's test database in the distributed pass, the
SQLite test file in the embedded pass (tests using it are transactional, so what they write is committed).
"""
import asyncio
import base64
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_until(condition, timeout, every=0.05, what="condition"):
    """Poll ``condition()`` until it is truthy (returned) or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class RedisServer:
    """``redis-server`` on a free port in a temp dir, without persistence; stop() kills it, start() restarts it on
    the same port (a restart loses every subscription, as a real outage does)."""

    def __init__(self, tmp_path):
        if not shutil.which("redis-server"):
            pytest.skip("redis-server is not installed")
        self.port, self.dir, self.proc = free_port(), tmp_path, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, what=f"redis-server on port {self.port}")
        return self

    def _answers(self):
        try:
            with contextlib.closing(self.client()) as c:  # closed now: tests count this server's connections
                return c.ping()
        except Exception:
            assert self.proc.poll() is None, "redis-server exited"
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def client(self):
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=2)

    def connections(self):
        """Client connections other than the one asking: [{"name", "cmd", "sub", ...}] from CLIENT LIST."""
        with contextlib.closing(self.client()) as c:
            me = c.client_id()
            return [row for row in c.client_list() if int(row["id"]) != me]


@contextlib.contextmanager
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def database_url():
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def daphne(tmp_path, **env):
    """Daphne serving the product on the test database; ``env`` adds settings (REDIS_URL, COE_WS_*, LOG_LEVEL). Yields
    (base URL, path of its log). Without REDIS_URL in ``env`` it runs embedded (in-process bus, eager Celery)."""
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    base.update({"DATABASE_URL": database_url(), **{k: str(v) for k, v in env.items()}})
    port = free_port()
    log_path = tmp_path / f"daphne-{port}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                 "coe_site.asgi:application"], cwd=ROOT, env=base, stdout=log, stderr=log)
    try:
        def listening():
            assert proc.poll() is None, log_path.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_until(listening, 60, every=0.2, what="daphne to listen")
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:  # open websockets delay a graceful stop: the test is over
            proc.kill()
            proc.wait(5)


class WsClient:
    """A minimal RFC 6455 client over asyncio streams (server frames are unmasked and unfragmented from Daphne)."""

    def __init__(self, reader, writer):
        self.reader, self.writer, self.close_code = reader, writer, None

    @classmethod
    async def open(cls, base_url, groups="dashboard", token=None, cookie=None, rcvbuf=None, timeout=10):
        """Connect and do the handshake; returns (client or None, HTTP status line)."""
        host, port = base_url.split("//")[1].split(":")
        sock = socket.socket()
        if rcvbuf:  # a small receive buffer: a client that does not read fills it quickly
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, int(port))), timeout)
        reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf or 2 ** 16)
        headers = [f"GET /ws/events/?groups={groups} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                   "Connection: Upgrade", f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
                   "Sec-WebSocket-Version: 13", f"Origin: http://{host}:{port}"]
        if token:
            headers.append(f"Authorization: Bearer {token}")
        if cookie:
            headers.append(f"Cookie: {cookie}")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = head.split(b"\r\n")[0].decode()
        if " 101 " not in status:
            writer.close()
            return None, status
        return cls(reader, writer), status

    async def recv(self, timeout=10):
        """The next text message (str), or None once the server closed (``close_code``) or the connection ended."""
        while True:
            try:
                b1, b2 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
                n = b2 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                payload = await asyncio.wait_for(self.reader.readexactly(n), timeout)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            opcode = b1 & 0x0F
            if opcode == 1:
                return payload.decode()
            if opcode == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return None

    async def recv_json(self, timeout=10):
        text = await self.recv(timeout)
        return None if text is None else json.loads(text)

    async def next_event(self, name, timeout=10):
        """Skip messages until event ``name`` arrives (its data), or None if the socket ends first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = await self.recv_json(left)
            if message is None:
                return None
            if message["event"] == name:
                return message["data"]
        raise asyncio.TimeoutError(f"no {name!r} within {timeout} s")

    def close(self):
        self.writer.close()
