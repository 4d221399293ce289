"""pytest plugin for scripts/mutation.sh (loaded with -p in the mutation copy only): every pytest run gets its own
test database, copied from the first run's.

Why: mutmut forks each mutant's test run from one process that has already imported the settings, so the SQLite test
file named after the process id (coe_site/settings.py) would be the same for two mutants running at once, and one
would delete the other's database mid-test: a mutant would be "killed" by the other's teardown. Suffixing the
current process id keeps them apart. Migrating a fresh database for every mutant would take most of its run, so the
first run in the process (mutmut's, before any fork) keeps its migrated database and each later run starts from a
copy of it (SQLite's backup API, consistent whatever its journal holds), reused as it is, and deleted at its end.
"""
import os
import sqlite3
from pathlib import Path

_first = {}


def _files(name):
    return [Path(name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]


def pytest_configure(config):
    from django.conf import settings

    database = settings.DATABASES["default"]
    test = database.setdefault("TEST", {})
    name = _first.setdefault("name", str(test.get("NAME") or f"test_{database['NAME']}"))
    if not database["ENGINE"].endswith("sqlite3"):
        test["NAME"] = f"{name}_run{os.getpid()}"
        return
    path = Path(name)
    mine = str(path.with_name(f"{path.stem}-run{os.getpid()}{path.suffix}"))
    test["NAME"] = mine
    template = _first.setdefault("template", mine)
    config.option.reuse_db = True
    if template != mine and Path(template).exists():
        with sqlite3.connect(template) as source, sqlite3.connect(mine) as copy:
            source.backup(copy)
        config._mutation_copy = mine


def pytest_unconfigure(config):
    copy = getattr(config, "_mutation_copy", None)
    if copy:
        for f in _files(copy):
            f.unlink(missing_ok=True)
