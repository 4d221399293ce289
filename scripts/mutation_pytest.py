"""pytest plugin for scripts/mutation.sh (loaded with -p in the mutation copy only): every pytest run gets its own
test database.

Why: mutmut forks each mutant's test run from one process that has already imported the settings, so the SQLite test
file named after the process id (coe_site/settings.py) would be the same for two mutants running at once, and one
would delete the other's database mid-test. Suffixing the current process id keeps them apart.
"""
import os
from pathlib import Path

_first = {}


def pytest_configure(config):
    from django.conf import settings

    database = settings.DATABASES["default"]
    test = database.setdefault("TEST", {})
    name = _first.setdefault("name", str(test.get("NAME") or f"test_{database['NAME']}"))
    if database["ENGINE"].endswith("sqlite3"):
        path = Path(name)
        test["NAME"] = str(path.with_name(f"{path.stem}-run{os.getpid()}{path.suffix}"))
    else:
        test["NAME"] = f"{name}_run{os.getpid()}"
