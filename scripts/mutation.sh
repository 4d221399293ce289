#!/usr/bin/env bash
# Mutation testing of the core with mutmut (slow: not part of CI). See docs/TESTING.md.
#
#   scripts/mutation.sh                 # every module below
#   scripts/mutation.sh breaker router  # named modules
#   scripts/mutation.sh --list          # the modules and the tests that must kill their mutants
#
# Each module runs in a fresh copy of the working tree under var/mutation/<module>/ (tracked files and untracked ones
# git does not ignore), so the shared tree is never mutated and a run can be inspected afterwards
# (cd var/mutation/<module> && ../../../.venv/bin/python -m mutmut show <mutant>). Tests run in embedded mode
# (SQLite, in-memory cache), each mutant's run on its own test database (scripts/mutation_pytest.py). Prints each
# module's score: killed / (mutants - listed equivalent mutants), where scripts/mutation_equivalent.txt lists the
# equivalent ones with why. Exits 1 if a module is below 90 %.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"

# module: source file(s) | the fast focused tests for them [| the functions to mutate, as mutmut name globs, when only
# part of a file is the module: the rest of it is not generated, run nor scored]
spec() {
  case "$1" in
    router)      echo "routing/engine/router.py|tests/routing/test_router_fallback_rules.py tests/routing/test_router_calibration_rules.py" ;;
    uncertainty) echo "routing/engine/uncertainty.py|tests/routing/test_router_calibration_rules.py tests/routing/test_router_fallback_rules.py" ;;
    ratelimit)   echo "serving/ratelimit.py|tests/experts/test_ratelimit_rules.py" ;;
    breaker)     echo "experts/backends/breaker.py|tests/experts/test_breaker_rules.py tests/experts/test_breaker_dispatch.py" ;;
    policies)    echo "hwsim/engine/policies.py|tests/hwsim/test_policy_rules.py tests/hwsim/test_engine_policies.py" ;;
    mapservice)  echo "experts/services.py|tests/experts/test_map_service_rules.py tests/experts/test_map_service.py tests/experts/test_map_checks.py" ;;
    chunks)      echo "routing/services.py|tests/routing/test_chunk_claim_rules.py|$(chunk_functions)" ;;
    dispatch)    echo "experts/backends/dispatch.py|tests/experts/test_dispatch_rules.py tests/experts/test_breaker_dispatch.py" ;;
    costs)       echo "hwsim/engine/costs.py hwsim/engine/loading.py|tests/hwsim/test_cost_rules.py tests/hwsim/test_engine_loading.py" ;;
    designer)    echo "designer/engine/optimiser.py designer/engine/metrics.py|tests/designer/test_optimiser_rules.py tests/designer/test_metrics.py" ;;
    *) return 1 ;;
  esac
}
# routing/services.py also trains routers, parses uploads and runs demo traffic: the module is its batch machinery
chunk_functions() {
  local f out=""
  for f in create_batch claim_chunk process_chunk route_claimed_chunk renew_claim _fail_chunk finish_batch_if_complete \
           reconcile_batches retry_failed_chunks; do out+="routing.services.x_${f}__mutmut_* "; done
  echo "${out% }"
}
ALL="router uncertainty ratelimit breaker policies mapservice chunks dispatch costs designer"

if [ "${1:-}" = "--list" ]; then
  for m in $ALL; do printf '%-12s %s\n' "$m" "$(spec "$m")"; done
  exit 0
fi
modules="${*:-$ALL}"
[ "$modules" = all ] && modules="$ALL"
for m in $modules; do spec "$m" >/dev/null || { echo "unknown module '$m'; modules: $ALL" >&2; exit 2; }; done

"$python" -c "import mutmut" 2>/dev/null || { echo "mutmut is not installed: pip install -r requirements.txt" >&2; exit 2; }
export HF_HUB_OFFLINE=1
status=0
summary=()
for m in $modules; do
  IFS='|' read -r sources tests functions <<<"$(spec "$m")"
  work="$root/var/mutation/$m"
  rm -rf "$work" && mkdir -p "$work"
  (cd "$root" && git ls-files -z -co --exclude-standard | tar -c --null --ignore-failed-read -T - 2>/dev/null) \
    | tar -x -C "$work"
  {
    echo "[mutmut]"
    echo "source_paths ="; for s in $sources; do echo "    $s"; done
    # everything the Django test run imports comes along into mutmut's mutants/ folder
    echo "also_copy ="; for p in "$work"/*; do n="$(basename "$p")"; [ "$n" = tests ] || echo "    $n"; done
    # one argument per line: mutmut passes a one-line value to pytest as a single argument
    echo "pytest_add_cli_args ="; for a in -p no:cacheprovider -p scripts.mutation_pytest; do echo "    $a"; done
    echo "pytest_add_cli_args_test_selection ="; for t in $tests; do echo "    $t"; done
  } >"$work/setup.cfg"
  echo "== mutation: $m ($sources) against $tests" >&2
  start=$(date +%s)
  # shellcheck disable=SC2086  # $functions: globs for mutmut, not for the shell
  (cd "$work" && set -f && env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL "$python" -m mutmut run \
     --max-children "${MUTATION_JOBS:-2}" $functions >"$work/mutmut-run.log" 2>&1) \
    || { echo "mutmut failed for $m: see $work/mutmut-run.log" >&2; tail -20 "$work/mutmut-run.log" >&2; exit 1; }
  # shellcheck disable=SC2086
  line="$(cd "$work" && set -f && "$python" "$root/scripts/mutation_score.py" "$m" "$root/scripts/mutation_equivalent.txt" \
          $functions)" || status=1
  summary+=("$line ($(( $(date +%s) - start )) s)")
done
echo
echo "Mutation scores (mutmut $("$python" -c 'import importlib.metadata as m; print(m.version("mutmut"))'), $(date -u +%Y-%m-%d)):"
printf '  %s\n' "${summary[@]}"
exit "$status"
