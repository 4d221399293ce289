"""Real Celery worker processes for tests: same code, the test database (PostgreSQL) and a private queue."""
import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parents[1]


def start_worker(queue, name):
    db = django_settings.DATABASES["default"]
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "COE_BATCH_QUEUE": queue, "COE_CHUNK_STALE_S": "4"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "coe_site", "worker", "--pool=solo", "--concurrency=1", "-Q", queue,
         "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
