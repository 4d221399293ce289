#!/usr/bin/env bash
# A separate venv for the comparison baselines, layered over .venv (a .pth file) so torch etc. are shared
# and the product's pins are untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "run ./test.sh or ./run.sh once first (creates .venv)" >&2; exit 1; }
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
base=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
bench=$(.venv-bench/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$base" > "$bench/_product_venv.pth"
.venv-bench/bin/python -m pip install --quiet -r bench/requirements-bench.txt
echo "ready: .venv-bench/bin/python bench/bench_router.py" >&2
