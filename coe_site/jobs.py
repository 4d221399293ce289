"""The one way to start background work, in both modes.

``enqueue("app.task_name", *args)`` runs a Celery task — named explicitly, so callers need not import the module that
defines it — once the current transaction commits, so the rows it reads exist:
- distributed mode: the message goes to the broker (``queue`` names a queue; ``countdown`` delays it). A broker
  outage at that moment is logged, not raised: the message is only a wake-up. Tasks take primary keys of rows that
  say what is pending, and the reconciler (``coe_site.reconcile``) sends again whatever is unfinished, whatever
  became of its message;
- embedded mode: the task runs in this process on a small pool of background threads (``COE_EMBEDDED_WORKERS``), each
  job with its own database connection, closed after it; with ``COE_JOBS_IN_BACKGROUND=0`` it runs inline on commit
  (tests, one-shot commands). Inline, a job with a ``countdown`` is not run at all: nothing would wait for it, and a
  job that schedules its successor (the live twin's tick) would recurse forever. The reconciler, or the test, runs
  what it stood for.
Tasks are idempotent (claims with conditional UPDATEs), so a duplicate wake-up does nothing.
"""
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from celery import current_app
from django.conf import settings
from django.db import connections, transaction

log = logging.getLogger(__name__)
_pool = {"pid": None, "executor": None}
_lock = threading.Lock()


def _executor():
    with _lock:  # one pool per process (a forked child starts its own)
        if _pool["pid"] != os.getpid():
            _pool.update(pid=os.getpid(), executor=ThreadPoolExecutor(
                max_workers=settings.COE_EMBEDDED_WORKERS, thread_name_prefix="coe-job"))
        return _pool["executor"]


def _run_here(name, args):
    try:
        current_app.tasks[name].apply(args=args, throw=True)
    except Exception:  # the row stays pending: the reconciler runs it again
        log.exception("background job %s%r failed", name, args)
    finally:
        connections.close_all()  # this thread's connections only


def send(name, *args, queue=None, countdown=None):
    """Start task ``name`` with ``args`` now (no transaction to wait for): broker or embedded runner."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            current_app.send_task(name, args, queue=queue, countdown=countdown)
        except Exception:  # broker unreachable: the reconciler re-sends once it is back
            log.warning("could not send %s%r to the broker; the reconciler will", name, args, exc_info=True)
        return
    if not settings.COE_JOBS_IN_BACKGROUND:
        if countdown:  # inline mode has no clock to wait on (module docstring)
            log.debug("inline mode: delayed job %s%r not run", name, args)
            return
        current_app.tasks[name].apply(args=args, throw=True)
    elif countdown:
        timer = threading.Timer(countdown, lambda: _executor().submit(_run_here, name, args))
        timer.daemon = True
        timer.start()
    else:
        _executor().submit(_run_here, name, args)


def enqueue(name, *args, queue=None, countdown=None):
    """Start task ``name`` with ``args`` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: send(name, *args, queue=queue, countdown=countdown))


def retry_delay(retries, base=2.0, cap=60.0):
    """Seconds before retry number ``retries`` of a task that met an outage: exponential, capped."""
    return min(cap, base * 2 ** retries)


# --- The reconciler: the periodic sweep that makes pending work independent of its messages ---------------------

_reconcilers = []
RECONCILE = "coe.reconcile"


def register_reconciler(fn):
    """Add ``fn()`` (returns a dict of counts) to the periodic sweep; apps register theirs in AppConfig.ready."""
    if fn not in _reconcilers:
        _reconcilers.append(fn)
    return fn


def reconcile():
    """Run every registered reconciler (one failing does not stop the others); {name: counts or error}."""
    report = {}
    for fn in _reconcilers:
        try:
            report[fn.__qualname__] = fn()
        except Exception as exc:  # e.g. the database is down: the next sweep tries again
            log.warning("reconciler %s failed: %s", fn.__qualname__, exc)
            report[fn.__qualname__] = {"error": f"{type(exc).__name__}: {exc}"}
    return report


def start_embedded_reconciler():
    """Embedded mode: sweep every COE_RECONCILE_EVERY_S on a daemon thread of this process (Celery beat does it in
    distributed mode). The first sweep runs at once: work a previous process left unfinished resumes on start.
    Returns an Event that stops it (None when nothing was started: distributed mode, disabled, already running)."""
    if (not settings.CELERY_TASK_ALWAYS_EAGER or not settings.COE_EMBEDDED_RECONCILER
            or _pool.get("sweeper") == os.getpid()):
        return None
    _pool["sweeper"], stop = os.getpid(), threading.Event()

    def loop():
        while not stop.is_set():
            try:
                reconcile()
            finally:
                connections.close_all()
            stop.wait(settings.COE_RECONCILE_EVERY_S)
        _pool["sweeper"] = None

    threading.Thread(target=loop, name="coe-reconciler", daemon=True).start()
    return stop
