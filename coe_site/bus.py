"""The live-event bus between processes: Redis pub/sub when ``REDIS_URL`` is set, in-process callbacks otherwise.

Publishers (any thread of any process: web requests, Celery workers, the coalescer) call ``publish(topic, text)``;
it never raises and never waits long, because a dropped live update must not fail or stall the write behind it.
Each web process holds ONE subscription (``listen``) whatever the number of its sockets, so Redis connections do not
grow with viewers. Pub/sub keeps nothing: a subscriber that was away missed what was published meanwhile, so
``listen`` reports ``("state", "down")`` and ``("state", "live")`` and the sockets catch up from the database.
"""
import asyncio
import contextlib
import json
import logging
import os
import queue
import random
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed

log = logging.getLogger(__name__)
CONTROL = "_control"  # topic of access-control events (revocations), never joined by a socket


def channel_prefix():
    """Redis pub/sub channels are global to the server (not per database number): the prefix keeps installations,
    and the database numbers they use, apart."""
    if settings.COE_WS_CHANNEL_PREFIX:
        return settings.COE_WS_CHANNEL_PREFIX
    db = (urlsplit(settings.REDIS_URL).path or "/0").strip("/") or "0"
    return f"coe:{db}:live:"


class RedisBus:
    """PUBLISH from a small blocking pool (thread-safe); one asyncio pub/sub connection per listening loop. Connections
    are named ``coe-live-pub-<pid>`` / ``coe-live-sub-<pid>`` in Redis's CLIENT LIST."""

    kind = "redis"

    def __init__(self, url, prefix, timeout_s=1.0, retry_s=1.0):
        self.url, self.prefix, self.timeout_s, self.retry_s = url, prefix, timeout_s, retry_s
        self._pid, self._client, self._down_until, self._failed = None, None, 0.0, False
        self._lock = threading.Lock()

    def _publisher(self):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if self._pid != os.getpid():  # first use, or a forked worker: never share the parent's sockets
            pool = redis.BlockingConnectionPool.from_url(
                self.url, max_connections=4, timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
                socket_timeout=self.timeout_s, retry=Retry(NoBackoff(), 1), client_name=f"coe-live-pub-{os.getpid()}")
            self._client, self._pid = redis.Redis(connection_pool=pool), os.getpid()
        return self._client

    def publish(self, topic, text):
        """True when Redis took the message. After a failure, publishing pauses ``retry_s`` (no stall per commit);
        the first success after one also publishes a resync, so sockets catch up on what was lost."""
        if time.monotonic() < self._down_until:
            return False
        try:
            with self._lock:
                client = self._publisher()
            client.publish(self.prefix + topic, text)
            if self._failed:
                self._failed = False
                client.publish(self.prefix + CONTROL, json.dumps({"kind": "resync"}))
            return True
        except Exception as exc:  # any Redis or socket error: the event is lost, the caller goes on
            if not self._failed:
                log.warning("live events: cannot publish to Redis (%s); retrying every %.0f s", exc, self.retry_s)
            self._failed, self._down_until = True, time.monotonic() + self.retry_s
            return False

    async def listen(self, topics, backoff=(0.2, 5.0), ping_s=5.0):
        """Yield ("message", topic, text) and ("state", "live" | "down") forever; reconnects with jittered backoff.
        A connection that stops answering pings for 3 × ``ping_s`` counts as down."""
        import redis.asyncio as aioredis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        delay = backoff[0]
        channels = [self.prefix + t for t in topics]
        cut = len(self.prefix)
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=self.timeout_s * 3,
                                             retry=Retry(NoBackoff(), 0), client_name=f"coe-live-sub-{os.getpid()}")
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await asyncio.wait_for(pubsub.subscribe(*channels), self.timeout_s * 3)
                yield ("state", "live")
                delay, heard = backoff[0], time.monotonic()
                while True:
                    message = await pubsub.get_message(timeout=ping_s)
                    now = time.monotonic()
                    if message is not None:
                        heard = now
                        if message["type"] == "message":
                            yield ("message", message["channel"].decode()[cut:], message["data"].decode())
                    elif now - heard > 3 * ping_s:
                        raise ConnectionError("no answer to pings")
                    else:
                        await pubsub.ping()
            except Exception as exc:  # (cancellation is not an Exception: it ends the loop)
                log.warning("live events: Redis subscription lost (%s); retrying in %.1f s", exc, delay)
                yield ("state", "down")
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, backoff[1])
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    @contextlib.contextmanager
    def recorder(self, topics):
        """A blocking subscription for tests and tools: ``drain(quiet_s)`` returns [(topic, text)] received."""
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=self.timeout_s * 3)
        pubsub = client.pubsub()
        pubsub.subscribe(*[self.prefix + t for t in topics])
        for _ in topics:  # subscribed for real before the caller publishes
            pubsub.get_message(timeout=5)
        cut = len(self.prefix)

        def drain(quiet_s=0.5):
            got = []
            while (m := pubsub.get_message(ignore_subscribe_messages=True, timeout=quiet_s)) is not None:
                got.append((m["channel"].decode()[cut:], m["data"].decode()))
            return got

        try:
            yield drain
        finally:
            pubsub.close()
            client.close()


class LocalBus:
    """Embedded mode (one process): publishing hands the message to every listening event loop of this process."""

    kind = "local"

    def __init__(self, capacity=1000):
        self.capacity = capacity
        self._listeners = []  # [(topics, deliver(topic, text))]
        self._lock = threading.Lock()

    def publish(self, topic, text):
        with self._lock:
            listeners = list(self._listeners)
        for topics, deliver in listeners:
            if topic in topics:
                deliver(topic, text)
        return True

    def _register(self, topics, deliver):
        entry = (frozenset(topics), deliver)
        with self._lock:
            self._listeners.append(entry)
        return entry

    def _unregister(self, entry):
        with self._lock:
            if entry in self._listeners:
                self._listeners.remove(entry)

    async def listen(self, topics):
        """Same contract as RedisBus.listen. Queued messages are bounded: a loop that falls ``capacity`` messages
        behind drops them and reports down/live, so its sockets catch up from the database."""
        loop = asyncio.get_running_loop()
        inbox = asyncio.Queue(self.capacity)
        lost = []

        def put(item):
            try:
                inbox.put_nowait(item)
            except asyncio.QueueFull:
                lost.append(1)

        def deliver(topic, text):
            try:
                if asyncio.get_running_loop() is loop:
                    put((topic, text))
                    return
            except RuntimeError:
                pass
            try:
                loop.call_soon_threadsafe(put, (topic, text))
            except RuntimeError:  # the loop has closed without ending this generator: nobody listens any more
                self._unregister(entry)

        entry = self._register(topics, deliver)
        try:
            yield ("state", "live")
            while True:
                topic, text = await inbox.get()
                yield ("message", topic, text)
                if lost and inbox.empty():
                    lost.clear()
                    yield ("state", "down")
                    yield ("state", "live")
        finally:
            self._unregister(entry)

    @contextlib.contextmanager
    def recorder(self, topics):
        got = queue.Queue()
        entry = self._register(topics, lambda topic, text: got.put((topic, text)))

        def drain(quiet_s=0.5):
            out = []
            with contextlib.suppress(queue.Empty):
                while True:
                    out.append(got.get(timeout=quiet_s))
            return out

        try:
            yield drain
        finally:
            self._unregister(entry)


_bus = {"bus": None}
_bus_lock = threading.Lock()


def get_bus():
    """This process's bus, chosen by settings (Redis when REDIS_URL is set)."""
    with _bus_lock:
        if _bus["bus"] is None:
            if settings.REDIS_URL:
                _bus["bus"] = RedisBus(settings.REDIS_URL, channel_prefix(), settings.COE_WS_REDIS_TIMEOUT_S)
            else:
                _bus["bus"] = LocalBus()
        return _bus["bus"]


def publish(topic, text):
    return get_bus().publish(topic, text)


def _reset(*, setting, **kwargs):
    if setting in ("REDIS_URL", "COE_WS_CHANNEL_PREFIX", "COE_WS_REDIS_TIMEOUT_S"):
        with _bus_lock:
            _bus["bus"] = None


setting_changed.connect(_reset)  # tests point the bus at their own redis-server
