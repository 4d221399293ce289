"""Load the active router (and its embedder) in the background when a web process starts.

Why: loading them takes a second or two, and without this the first prompt after a (re)start — in a demo, the
first one anybody types — is the one that waits. Opt-in with ``COE_WARM_START=1`` (``run.sh`` sets it), so test
processes that import the ASGI app do not start database work of their own.
"""
import logging
import os
import threading

from django.db import connections

from routing.selectors import NoActiveRouter, active_router

log = logging.getLogger(__name__)


def _load():
    try:
        active_router()
    except NoActiveRouter:
        pass  # nothing trained yet: the first routing call says so
    except Exception:
        log.warning("router warm-up failed; the first prompt will load it", exc_info=True)
    finally:
        connections.close_all()


def start():
    if os.environ.get("COE_WARM_START") == "1":
        threading.Thread(target=_load, name="router-warm-up", daemon=True).start()
