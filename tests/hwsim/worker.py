"""Start a real Celery worker process on its own queue against the test database (distributed mode only)."""
import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def skip_unless_distributed():
    from django.conf import settings

    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL (a real broker): runs in CI's PostgreSQL + Redis pass")
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("a worker process cannot share an in-memory SQLite test database")


def test_database_url():
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def celery_worker():
    """Yield a fresh queue name that a one-process worker consumes; the worker is stopped afterwards."""
    queue = f"hwsim-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": test_database_url(), "DB_CONN_MAX_AGE": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "coe_site", "worker", "--pool=solo",
                             "--concurrency=1", "-Q", queue, "--without-gossip", "--without-mingle",
                             "--without-heartbeat", "-l", "WARNING"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield queue
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(check, timeout=90, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
