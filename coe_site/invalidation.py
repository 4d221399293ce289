"""Per-process caches for rows the request path would otherwise read on every call, kept honest by the events the
services already announce on the live-event bus.

Why: a chat call looked up its token, its user and the experts' rows in the database every time (a round trip each,
two more for a role's permissions). A cache may only hold such rows if a change reaches it at once, so an entry here
is served only when

- it is younger than its TTL (a backstop for changes nobody announces: a row changed by SQL);
- no event of its topic arrived since it was read: ``coe_site.ws_access`` announces token, user and role changes on
  the bus's control topic, the map services expert and map changes on the ``map`` topic, when they commit, and every
  process listens (one thread, one subscription, per process); the process making a change also drops its entries at
  once, before it commits (Django signals, see ``bump``);
- this process's subscription is live: while it is down (Redis unreachable, not yet connected), events could be
  missed, so nothing is served from the cache and every call reads the database as before.

A read that raced with an event is not stored (``stamp``/``put``): an entry never outlives a change it did not see.
"""
import asyncio
import contextlib
import copy
import logging
import os
import threading
import time

from . import bus

log = logging.getLogger(__name__)
MAX_ENTRIES = 10_000  # per cache: the rows of live tokens only (unknown tokens are never cached)


class Watch:
    """This process's subscription to the topics caches depend on, in a daemon thread with its own event loop (so it
    serves every way of running the app: Daphne, uvicorn, WSGI, tests). ``generation[topic]`` counts the events seen;
    it also moves whenever the subscription goes down or comes back, since events may have been missed meanwhile."""

    def __init__(self, topics):
        self.topics = tuple(topics)
        self.generation = dict.fromkeys(self.topics, 0)
        self.live = False
        self._lock = threading.Lock()
        self._bus = self._pid = self._loop = self._task = None

    def bump(self, topic=None):
        with self._lock:
            for t in ([topic] if topic else self.topics):
                self.generation[t] += 1

    def usable(self):
        """True while events reach this process; starts (or restarts, after a fork or a new bus) the listener."""
        current = bus.get_bus()
        if self._bus is not current or self._pid != os.getpid():
            self._start(current)
            return False
        return self.live

    def _start(self, current):
        with self._lock:
            if self._bus is current and self._pid == os.getpid():
                return
            if self._loop is not None and self._pid == os.getpid():  # the bus changed (tests point it elsewhere)
                with contextlib.suppress(RuntimeError):  # unless its loop has ended already
                    self._loop.call_soon_threadsafe(self._task.cancel)
            self._bus, self._pid, self.live = current, os.getpid(), False
            ready = threading.Event()
            threading.Thread(target=self._run, args=(current, ready), name="cache-invalidation", daemon=True).start()
            ready.wait(5)  # the loop and task exist before anyone may cancel them

    def _run(self, listened, ready):
        async def main():
            self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
            ready.set()
            async for item in listened.listen(list(self.topics)):
                if self._bus is not listened:
                    return
                if item[0] == "state":
                    self.bump()
                    self.live = item[1] == "live"
                else:
                    self.bump(item[1])

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        except Exception:  # the bus reconnects by itself; this is a bug: serve without caching, and say so
            log.exception("cache invalidation: the subscription failed; caches are bypassed")
        finally:
            ready.set()
            if self._bus is listened:
                self.live = False
                self._bus = None  # the next usable() starts a new listener


class Cache:
    """A dict of entries, each served at most ``ttl_s()`` seconds and only while no event of ``topic`` arrived."""

    def __init__(self, watch, topic, ttl_s):
        self.watch, self.topic, self.ttl_s = watch, topic, ttl_s
        self._entries = {}

    def stamp(self):
        """Take before reading the database; hand to ``put`` with what was read. None: do not cache now."""
        if not self.watch.usable():
            return None
        return self.watch.generation[self.topic], time.monotonic()

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None or not self.watch.usable():
            return None
        value, generation, at = entry
        if generation != self.watch.generation[self.topic] or time.monotonic() - at > self.ttl_s():
            return None
        return value

    def put(self, key, value, stamp):
        if stamp is None or stamp[0] != self.watch.generation[self.topic]:
            return  # an event arrived while this was read: it may be stale already
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (value, stamp[0], stamp[1])

    def clear(self):
        self._entries.clear()


def row_values(instance):
    """A model instance's column values, as a cache entry keeps them."""
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def instance(model, values):
    """A fresh ``model`` instance, as if loaded from the database, from ``row_values``: nothing (not even a JSON
    field's list or dict) is shared between the calls served from one entry."""
    return model.from_db("default", list(values),
                         [copy.deepcopy(v) if isinstance(v, (dict, list)) else v for v in values.values()])


watch = Watch([bus.CONTROL, "map"])  # token, user and role changes (coe_site.ws_access); experts (experts.services)
