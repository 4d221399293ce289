"""Real Celery worker and beat processes for tests: same code, the test database (PostgreSQL) and a private queue.

``env`` overrides the environment of the process (e.g. a private broker, a database behind a cuttable proxy);
output goes to ``log`` when given (read it when a test fails), else stderr is kept in a pipe."""
import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parents[1]


def database_url(port=None):
    db = django_settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}/{db['NAME']}"


def _spawn(args, env, log):
    out = open(log, "a") if log else subprocess.DEVNULL
    err = out if log else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "coe_site", *args], cwd=ROOT, env=env,
                            start_new_session=True, stdout=out, stderr=err)


def start_worker(queue, name, log=None, all_queues=False, **env):
    """A solo worker consuming ``queue`` (chunks), and with ``all_queues`` also ``celery`` (reconcile, retraining,
    simulations: only on a test's private broker, where nothing else sends there)."""
    env = {**os.environ, "DATABASE_URL": database_url(), "COE_BATCH_QUEUE": queue, "COE_CHUNK_STALE_S": "4",
           **{k: str(v) for k, v in env.items()}}
    return _spawn(["worker", "--pool=solo", "--concurrency=1", "-Q", f"{queue},celery" if all_queues else queue, "-n", f"{name}@%h",
                   "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"], env, log)


def start_beat(schedule_dir, log=None, **env):
    """Celery beat: sends the reconciler every COE_RECONCILE_EVERY_S (set it small in ``env``)."""
    env = {**os.environ, "DATABASE_URL": database_url(), **{k: str(v) for k, v in env.items()}}
    return _spawn(["beat", "-s", str(Path(schedule_dir) / "beat-schedule"), "--loglevel=WARNING"], env, log)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
