"""The migrations upgrade a database made by the code of an earlier commit to this tree's code without losing rows.

The base commit's tree (``git archive``) migrates a fresh database and seeds a row in every model of the project apps
(foreign keys between them, a user with role groups and permissions: tests/migration_upgrade_seed.py); this tree then
migrates the same database, and the check finds each recorded db_table's current owner (so a model that moved to
another app with a state-only migration is found), compares counts, rows and foreign keys through the ORM, and the
user's permissions on the models that own the tables now. ``makemigrations --check`` must find no model change without
a migration, and ``migrate --plan`` nothing left to apply.

Two databases: a SQLite file (both CI passes), and a new PostgreSQL database on the test run's server (the distributed
pass; created and dropped here). CI needs the base commit in its clone (full history): without it the test fails.
"""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

BASE_COMMIT = "49ae5e31bbf78285b294f3452238cfb948839036"
ROOT = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).with_name("migration_upgrade_seed.py")
# Runs HELPER with sys.path[0] = the working directory (the tree under test), not tests/ (whose routing/, experts/ …
# test packages would shadow the apps).
RUN_HELPER = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
STEP_TIMEOUT_S = 300
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PYTHONPATH")

_trees = {}


def base_tree(tmp_path_factory):
    """The base commit's files, extracted once per session. Fails (never skips) when the commit is not in the clone."""
    if "tree" in _trees:
        return _trees["tree"]
    found = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{BASE_COMMIT}^{{commit}}"],
                           capture_output=True, text=True, check=False)
    if found.returncode != 0:
        pytest.fail(f"base commit {BASE_COMMIT} is not in the git history of {ROOT} ({found.stderr.strip()}): the "
                    f"migration upgrade test needs it; clone with full history (e.g. actions/checkout fetch-depth: 0) "
                    f"or `git fetch --unshallow`", pytrace=False)
    tree = tmp_path_factory.mktemp("base-tree")
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", BASE_COMMIT], stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, capture_output=True,
                           timeout=120, check=False)
    archive.stdout.close()
    if archive.wait(timeout=120) != 0 or untar.returncode != 0:
        pytest.fail(f"could not extract {BASE_COMMIT} into {tree}: {untar.stderr.decode()[-2000:]}", pytrace=False)
    _trees["tree"] = tree
    return tree


def environment(var_dir, database_url=None):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update({
        "COE_VAR_DIR": str(var_dir),  # embedded mode: the SQLite file is COE_VAR_DIR/coe.sqlite3
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or f"test-only-{uuid.uuid4().hex}",
        "DJANGO_SETTINGS_MODULE": "coe_site.settings",
        "COE_UPSTREAM_ALLOWED_HOSTS": "127.0.0.1,localhost,::1",
        "COE_EMBEDDED_RECONCILER": "0",
        "COE_JOBS_IN_BACKGROUND": "0",
        "HF_HUB_OFFLINE": "1",
    })
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def step(what, args, cwd, env):
    """Run one command; fail the test with its output when it fails or hangs. Returns its stdout."""
    try:
        result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
                                check=False)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{what} did not finish in {STEP_TIMEOUT_S} s (cwd {cwd})\nstdout:\n{_text(e.stdout)[-3000:]}\n"
                    f"stderr:\n{_text(e.stderr)[-5000:]}", pytrace=False)
    if result.returncode != 0:
        pytest.fail(f"{what} failed (exit {result.returncode}, cwd {cwd})\nstdout:\n{result.stdout[-3000:]}\n"
                    f"stderr:\n{result.stderr[-8000:]}", pytrace=False)
    return result.stdout


def _text(output):
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def upgrade_keeps_rows(base, tmp_path, env):
    old_python = new_python = [sys.executable]  # the same interpreter and packages for both trees
    step(f"migrate with the base commit's code ({BASE_COMMIT[:10]})", [*old_python, "manage.py", "migrate",
                                                                      "--no-input"], base, env)
    seeded = step("seeding with the base commit's code", [*old_python, "-c", RUN_HELPER, str(HELPER), "seed"],
                  base, env)
    record = json.loads(seeded.strip().splitlines()[-1])
    (tmp_path / "record.json").write_text(json.dumps(record))
    assert {"routing_category", "routing_routingdecision", "experts_expertcall", "experts_mapassignment",
            "designer_categoryscore", "hwsim_runexportpart", "access_apitoken"} <= set(record["tables"])
    assert all(t["count"] > 0 for t in record["tables"].values()), record["tables"]

    step("migrate with this tree's code", [*new_python, "manage.py", "migrate", "--no-input"], ROOT, env)
    checked = json.loads(step("checking the seeded rows with this tree's code",
                              [*new_python, "-c", RUN_HELPER, str(HELPER), "check", str(tmp_path / "record.json")],
                              ROOT, env).strip().splitlines()[-1])
    assert checked["tables"] == len(record["tables"])

    changes = step("makemigrations --check --dry-run (models changed without a migration?)",
                   [*new_python, "manage.py", "makemigrations", "--check", "--dry-run"], ROOT, env)
    assert "No changes detected" in changes, changes
    plan = step("migrate --plan", [*new_python, "manage.py", "migrate", "--plan"], ROOT, env)
    assert "No planned migration operations" in plan, plan


def test_upgrade_from_base_commit_keeps_rows_sqlite(tmp_path_factory, tmp_path):
    base = base_tree(tmp_path_factory)
    var = tmp_path / "var"
    var.mkdir()
    upgrade_keeps_rows(base, tmp_path, environment(var))
    assert (var / "coe.sqlite3").exists()


@pytest.fixture
def postgres_database():
    """A new, empty database on the test run's PostgreSQL server (DATABASE_URL), dropped afterwards."""
    import environ
    import psycopg
    from psycopg import sql

    url = os.environ["DATABASE_URL"]
    server = environ.Env.db_url_config(url)
    name = f"coe_upgrade_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    connect = {"host": server["HOST"] or "127.0.0.1", "port": server["PORT"] or 5432, "user": server["USER"],
               "password": server["PASSWORD"] or None, "dbname": "postgres", "autocommit": True, "connect_timeout": 10}
    with psycopg.connect(**connect) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        with psycopg.connect(**connect) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.services
@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                    reason="needs PostgreSQL (DATABASE_URL): runs in the distributed pass")
def test_upgrade_from_base_commit_keeps_rows_postgresql(tmp_path_factory, tmp_path, postgres_database):
    base = base_tree(tmp_path_factory)
    var = tmp_path / "var"
    var.mkdir()
    upgrade_keeps_rows(base, tmp_path, environment(var, postgres_database))
