"""Two (or more) processes that call a service at the same moment, for the PostgreSQL race tests.

Each racer is a fresh process (spawned: nothing inherited from the test process but the environment) with Django set
up on the test database and its connection already open. For every race, each racer waits at a shared barrier and
then makes its call; the test gets every racer's outcome back. Threads would not do: Django gives each thread its own
connection, but the point is separate processes, as separate Celery workers and web processes are.
"""
import multiprocessing
import os
from contextlib import contextmanager

import pytest

CALLS = {
    "claim_chunk": ("routing.services", "claim_chunk"),
    "publish_map": ("experts.services", "publish_map"),
}


def needs_postgresql():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): separate processes racing on one database's row locks; "
                    "the embedded SQLite pass skips it")


def _racer(db_url, barrier, jobs, results, me):
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coe_site.settings")
    import importlib

    import django

    django.setup()
    from django.db import connection

    connection.ensure_connection()  # connect before the first race, not inside it
    results.put((me, "ready", None))
    for name, args in iter(jobs.get, None):
        module, function = CALLS[name]
        call = getattr(importlib.import_module(module), function)
        barrier.wait(timeout=60)
        try:
            value = call(**args) if isinstance(args, dict) else call(*args)
            results.put((me, "ok", getattr(value, "number", value)))
        except Exception as exc:  # the outcome the test looks at
            results.put((me, type(exc).__name__, str(exc)))
    connection.close()


@contextmanager
def racing(n=2):
    """Yields race(name, *args_per_racer) -> [(outcome, value) per racer]: racer i calls the function called
    ``name`` with ``args_per_racer[i]`` (an args tuple, or a dict of keyword arguments; one for all if only one is
    given); outcome is "ok" (value: the result, or its ``number``) or the exception's class name (value: its
    message)."""
    from django.db import connection

    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    jobs = [ctx.Queue() for _ in range(n)]
    procs = [ctx.Process(target=_racer, args=(url, barrier, jobs[i], results, i), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    try:
        assert sorted(results.get(timeout=120)[:2] for _ in procs) == [(i, "ready") for i in range(n)]

        def race(name, *args_per_racer):
            for i, q in enumerate(jobs):
                q.put((name, args_per_racer[i % len(args_per_racer)]))
            outcomes = sorted(results.get(timeout=60) for _ in procs)
            return [(outcome, value) for _, outcome, value in outcomes]

        yield race
    finally:
        for q in jobs:
            q.put(None)
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join()
