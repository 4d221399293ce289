"""Fan-out of live events to this process's websockets: one bus subscription per event loop (one per web process),
re-broadcast to its sockets through bounded per-socket queues.

Why: a channel per socket made Redis connections and work grow with viewers (100 viewers already hit the
connection limit). Here a message is decoded once per process, each payload variant (see ``lenses``) is encoded once,
and each socket gets the variant its viewer may see. A socket whose client reads too slowly is shed — closed with
4408 once ``queue_limit`` messages wait for it — so memory stays bounded and the others never wait for it; its page
reconnects and catches up from the database. Knows no domain concept: who may see what and when a socket must close
come from the ``lenses`` and the ``guard`` the wiring passes in.
"""
import asyncio
import collections
import functools
import json
import logging
import time
import weakref

from .bus import CONTROL

log = logging.getLogger(__name__)
CLOSE_REVOKED, CLOSE_TOO_SLOW = 4401, 4408


class KeepServerSend:
    """Outermost websocket middleware: puts the server's own ``send`` in the scope as ``server_send``. The middlewares
    below wrap ``send`` (the session middleware, for HTTP cookies); frames go out through the server's own, which is
    also where the hub reads the server's backlog."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        return await self.app({**scope, "server_send": send}, receive, send)


def server_backlog(send):
    """A function giving the bytes the server holds for this socket but has not written to the network yet, or None
    when the server does not tell. Daphne (Twisted) accepts every send at once and buffers without limit, so the hub
    watches its transport; servers with flow control (uvicorn) block the send instead, which the pump absorbs."""
    protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
    transport = getattr(protocol, "transport", None)
    if transport is None or not all(hasattr(transport, a) for a in ("dataBuffer", "offset", "_tempDataLen")):
        return None
    return lambda: len(transport.dataBuffer) - transport.offset + transport._tempDataLen


class Socket:
    """One open websocket: what it joined, who views it (opaque to the hub) and its pending messages."""

    def __init__(self, send, groups, viewer):
        self._send, self.groups, self.viewer = send, frozenset(groups), viewer
        self.backlog = server_backlog(send)
        self.queue = collections.deque()
        self.pump = None
        self.closed = False
        self.expiry = None  # a timer closing the socket when its credential expires

    async def send_text(self, text):
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code):
        await self._send({"type": "websocket.close", "code": code})


class Hub:
    """Sockets of one event loop and the loop's subscription. ``lenses``: {event name: lens}, where
    ``lens(data) -> (key_of(viewer), render(key))`` decides which variant each viewer gets (rendered once per key);
    ``guard`` decides when a socket must close (see coe_site.ws_access.Guard)."""

    def __init__(self, bus, topics, *, lenses=None, guard=None, queue_limit=64, max_buffer=1 << 20, recheck_s=5.0):
        self.bus, self.topics, self.lenses, self.guard = bus, tuple(topics), lenses or {}, guard
        self.queue_limit, self.max_buffer, self.recheck_s = queue_limit, max_buffer, recheck_s
        self.sockets = set()
        self.by_group = collections.defaultdict(set)
        self.live = False
        self.counters = collections.Counter()  # sockets shed and revoked so far: reported in the log
        self._ready = asyncio.Event()
        self._tasks = []

    # --- sockets ------------------------------------------------------------------------------------------------
    async def ready(self, timeout):
        """Start the subscription on first use; True once it is live (False if it is not within ``timeout``)."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._run(), name="live-hub"),
                           asyncio.create_task(self._recheck_loop(), name="live-recheck")]
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self.live

    def attach(self, sock):
        self.sockets.add(sock)
        for group in sock.groups:
            self.by_group[group].add(sock)
        expires = self.guard.expires_at(sock.viewer) if self.guard else None
        if expires is not None:
            loop = asyncio.get_running_loop()
            sock.expiry = loop.call_later(max(0.0, expires - time.time()),
                                          lambda: self.close(sock, CLOSE_REVOKED, "credential expired"))

    def detach(self, sock):
        sock.closed = True
        sock.queue.clear()
        self.sockets.discard(sock)
        for group in sock.groups:
            self.by_group[group].discard(sock)
        if sock.expiry is not None:
            sock.expiry.cancel()
        if sock.pump is not None and sock.pump is not asyncio.current_task():
            sock.pump.cancel()

    def close(self, sock, code, why):
        """Close ``sock`` now (revoked: 4401, too slow: 4408); the rest of its queue is dropped."""
        if sock.closed:
            return
        self.detach(sock)
        kind = "revoked" if code == CLOSE_REVOKED else "shed"
        self.counters[kind] += 1
        log.log(logging.INFO if code == CLOSE_REVOKED else logging.WARNING,
                "live events: closing a socket of %s with %s (%s); %d %s so far in this process",
                sock.viewer, code, why, self.counters[kind], kind)
        asyncio.get_running_loop().create_task(self._close(sock, code))

    @staticmethod
    async def _close(sock, code):
        try:
            await sock.close(code)
        except Exception:  # the connection is already gone
            pass

    # --- delivery -----------------------------------------------------------------------------------------------
    async def broadcast(self, group, text):
        """Deliver a published message (``{"event", "data"}`` as JSON text) to the sockets that joined ``group``."""
        targets = list(self.by_group.get(group, ())) if group is not None else list(self.sockets)
        if not targets:
            return
        text_for = self._variants(text)
        for sock in targets:
            await self._deliver(sock, text_for(sock))

    def _variants(self, text):
        message = json.loads(text)
        lens = self.lenses.get(message.get("event"))
        if lens is None:
            return lambda sock: text
        key_of, render = lens(message.get("data"))
        cache = {}

        def text_for(sock):
            key = key_of(sock.viewer)
            if key not in cache:
                view = render(key)
                cache[key] = text if view is message["data"] else json.dumps({"event": message["event"], "data": view})
            return cache[key]

        return text_for

    async def _deliver(self, sock, text):
        if sock.closed:
            return
        if sock.backlog is not None and sock.pump is None and not sock.queue and sock.backlog() <= self.max_buffer:
            try:
                await sock.send_text(text)  # a buffering server takes it at once: no task per message
            except Exception:
                self.detach(sock)
            return
        if len(sock.queue) >= self.queue_limit:
            self.close(sock, CLOSE_TOO_SLOW, f"{len(sock.queue)} messages behind")
            return
        sock.queue.append(text)
        if sock.pump is None:
            sock.pump = asyncio.get_running_loop().create_task(self._pump(sock))

    async def _pump(self, sock):
        """Send ``sock``'s queue in order, waiting while the server still holds more than ``max_buffer`` bytes for it
        (or, on servers with flow control, while its send blocks)."""
        try:
            while sock.queue and not sock.closed:
                while sock.backlog is not None and sock.backlog() > self.max_buffer and not sock.closed:
                    await asyncio.sleep(0.05)
                if sock.closed:
                    break
                await sock.send_text(sock.queue.popleft())
        except Exception:
            self.detach(sock)
        finally:
            sock.pump = None

    # --- the subscription -----------------------------------------------------------------------------------------
    async def _run(self):
        while True:  # the bus reconnects by itself; this only survives a bug or a bad URL in it
            try:
                async for item in self.bus.listen([*self.topics, CONTROL]):
                    try:
                        if item[0] == "state":
                            await self._state(item[1])
                        elif item[1] == CONTROL:
                            await self._control(json.loads(item[2]))
                        else:
                            await self.broadcast(item[1], item[2])
                    except Exception:  # one bad message must not end the subscription
                        log.exception("live events: cannot deliver %r", item[:2])
            except Exception:
                log.exception("live events: the subscription failed; starting it again")
                await self._state("down")
                await asyncio.sleep(1)

    async def _state(self, state):
        if state == "live":
            self.live = True
            self._ready.set()
            # sockets attached before now may have missed messages (the bus was down, or not up yet when they were
            # greeted with live: false): they catch up. At start-up no socket is attached yet.
            await self.resync()
        elif self.live:
            self.live = False
            await self.broadcast(None, json.dumps({"event": "stream", "data": {"state": "interrupted"}}))

    async def resync(self):
        await self.broadcast(None, json.dumps({"event": "resync", "data": {}}))

    async def _control(self, message):
        if message.get("kind") == "resync":
            await self.resync()
            return
        if self.guard is None:
            return
        close, check = self.guard.affected(message, list(self.sockets))
        for sock in close:
            self.close(sock, CLOSE_REVOKED, message.get("kind"))
        if check:
            await self._recheck(check)

    async def _recheck(self, sockets):
        for sock in await self.guard.recheck(sockets):
            self.close(sock, CLOSE_REVOKED, "re-check")

    async def _recheck_loop(self):
        """The backstop for revocations no event announced (a row deleted by SQL, an expired session)."""
        while True:
            await asyncio.sleep(self.recheck_s)
            if self.guard is not None and self.sockets:
                try:
                    await self._recheck(list(self.sockets))
                except Exception as exc:  # database down: keep the sockets, try again next period
                    log.warning("live events: socket re-check failed (%s)", exc)


_hubs = weakref.WeakKeyDictionary()


def hub_for_running_loop(factory):
    """The hub of the running event loop (one per web process), made by ``factory()`` on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = factory()
    return hub


def socket_count():
    """Websockets open in this process (every event loop's hub)."""
    return sum(len(hub.sockets) for hub in list(_hubs.values()))
