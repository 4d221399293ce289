"""The architecture contract (.importlinter, run by `lint-imports` in .ci/run) holds for this tree and fails when an
app imports one above it, an engine imports Django or an app imports another app's models module (instead of reading
it through its selectors): each violation is planted in a copy of the code."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("access", "coe_site", "dashboard", "designer", "experts", "hwsim", "routing", "serving")


def lint(tree):
    return subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
                          cwd=tree, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def tree(tmp_path):
    """The project's packages and contract, copied (sources only)."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    return tmp_path


def plant(path, line):
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_keeps_the_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("experts/selectors.py", "from routing import selectors as _upward  # noqa", "Apps depend in one direction"),
    ("routing/services.py", "def _hidden():\n    from serving import answering  # noqa", "Apps depend in one direction"),
    ("access/roles.py", "from experts.models import Expert  # noqa", "Apps depend in one direction"),
    ("hwsim/engine/costs.py", "from django.conf import settings  # noqa", "Engines import no Django"),
    ("routing/engine/router.py", "from experts import selectors  # noqa", "Engines import no Django"),
    ("hwsim/views.py", "from routing.models import Batch  # noqa",
     "Other apps read routing through routing.selectors"),
    ("designer/views.py", "from experts.models import Expert  # noqa",
     "Other apps read experts through experts.selectors"),
    ("dashboard/metrics.py", "def _hidden():\n    from serving.models import ExpertCall  # noqa",
     "Other apps read serving through serving.selectors"),
    ("coe_site/ws_access.py", "from access.models import ApiToken  # noqa",
     "Other apps read access through access.selectors"),
])
def test_a_planted_violation_breaks_the_contract(tree, module, line, broken):
    plant(tree / module, line)
    result = lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout.split(broken, 1)[1].splitlines()[0]
