"""Settings in both modes, and fail-fast start-up when a configured service is unreachable."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import django, json; django.setup(); from django.conf import settings as s; "
         "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'bus': s.COE_WS_BUS,"
         " 'eager': s.CELERY_TASK_ALWAYS_EAGER, 'broker': s.CELERY_BROKER_URL}))")


def probe(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**base, **env}, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_embedded_defaults(tmp_path):
    s = probe(COE_VAR_DIR=str(tmp_path))
    assert s == {"db": "django.db.backends.sqlite3", "bus": "local",
                 "eager": True, "broker": "memory://"}


def test_distributed_settings():
    s = probe(DATABASE_URL="postgres://postgres@127.0.0.1:5432/test", REDIS_URL="redis://127.0.0.1:6379/0")
    assert s == {"db": "django.db.backends.postgresql", "bus": "redis",
                 "eager": False, "broker": "redis://127.0.0.1:6379/0"}
    s = probe(REDIS_URL="redis://127.0.0.1:6379/0", CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//")
    assert s["broker"].startswith("amqp://") and not s["eager"]


def test_psycopg3_is_the_postgres_driver():
    from django.db.backends.postgresql import base

    assert base.is_psycopg3


@pytest.mark.parametrize("env, message", [
    ({"DATABASE_URL": "postgres://postgres@127.0.0.1:1/test"}, "database postgresql at 127.0.0.1 (DATABASE_URL) is unreachable"),
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "Redis at redis://127.0.0.1:1 (REDIS_URL) is unreachable"),
    ({"REDIS_URL": "redis://127.0.0.1:6379/0", "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//"},
     "Celery broker at amqp://127.0.0.1:1 (CELERY_BROKER_URL) is unreachable"),
])
def test_unreachable_service_fails_fast_with_a_clear_message(tmp_path, env, message):
    if "6379" in str(env.values()) and not _port_open(6379):
        pytest.skip("needs the local Redis")
    result = manage("check", COE_VAR_DIR=str(tmp_path), **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_embedded_mode_passes_the_service_check(tmp_path):
    result = manage("check", COE_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr


def _port_open(port):
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_warm_start_loads_the_active_router_in_the_background(active_router, monkeypatch, transactional_db):
    import threading

    from coe_site import warmup
    from routing import selectors

    selectors._cache.update(version=None, router=None, row=None)
    monkeypatch.setenv("COE_WARM_START", "1")
    warmup.start()
    for thread in threading.enumerate():
        if thread.name == "router-warm-up":
            thread.join(60)
    assert selectors._cache["router"] is not None and selectors._cache["row"].pk == active_router.pk


def test_postgres_connections_detect_a_vanished_host():
    """A partition must fail a query within about a minute, not block a worker forever: the live connection carries
    TCP keepalives and a user timeout (libpq reports what it used), and a DATABASE_URL parameter overrides a default."""
    code = ("import django, json; django.setup(); from django.db import connection; from psycopg.conninfo import "
            "conninfo_to_dict; connection.ensure_connection(); print(json.dumps(conninfo_to_dict(connection.connection.info.dsn)))")
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    run = lambda url: json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, "DATABASE_URL": url},
                                                capture_output=True, text=True, check=True).stdout)
    dsn = run("postgres://postgres@127.0.0.1:5432/postgres")
    assert {k: dsn.get(k) for k in ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                                    "tcp_user_timeout", "connect_timeout")} == {
        "keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3",
        "tcp_user_timeout": "60000", "connect_timeout": "5"}
    assert run("postgres://postgres@127.0.0.1:5432/postgres?keepalives_idle=7")["keepalives_idle"] == "7"
