"""Score one finished mutmut run (run inside its work folder by scripts/mutation.sh).

score = (killed + timed out) / (mutants - equivalent). A mutant counts as equivalent only if it is listed in
scripts/mutation_equivalent.txt *and* its diff still changes the line recorded there: when the function is edited,
mutmut renumbers its mutants, and a stale entry must not hide a new survivor. Everything else that was not killed
(survived, no tests, suspicious, …) is printed with its diff and counts against the score. Globs after the list
(mutmut mutant names) restrict the score to those functions, for a module that is only part of a file.
"""
import fnmatch
import subprocess
import sys

TARGET = 0.90


def mutmut(*args):
    return subprocess.run([sys.executable, "-m", "mutmut", *args], capture_output=True, text=True,
                          check=True).stdout


def diff_lines(name):
    """The lines the mutant adds, stripped (the '+' side of its diff)."""
    return [line[1:].strip() for line in mutmut("show", name).splitlines()
            if line.startswith("+") and not line.startswith("+++")]


def load_equivalent(path):
    """name -> (mutated line, why) from the tab-separated list; '#' starts a comment line."""
    entries = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, mutated, why = line.rstrip("\n").split("\t")
                entries[name] = (mutated.strip(), why)
    return entries


def main(module, equivalent_path, *functions):
    status = {}
    for line in mutmut("results", "--all", "true").splitlines():
        name, _, state = line.strip().rpartition(": ")
        if name and (not functions or any(fnmatch.fnmatchcase(name, f) for f in functions)):
            status[name] = state
    listed = load_equivalent(equivalent_path)
    killed = sum(s in ("killed", "timeout") for s in status.values())
    equivalent, stale, left = [], [], []
    for name in sorted(n for n, s in status.items() if s not in ("killed", "timeout")):
        added = diff_lines(name)
        if name in listed and listed[name][0] in added:
            equivalent.append(name)
        else:
            if name in listed:
                stale.append(name)
            left.append(name)
    counted = len(status) - len(equivalent)
    score = killed / counted if counted else 0.0
    for name in left:
        print(f"--- not killed ({status[name]}): {name}", file=sys.stderr)
        print(mutmut("show", name), file=sys.stderr)
    for name in stale:
        print(f"!!! {name} is listed as equivalent but its diff changed: re-check it", file=sys.stderr)
    print(f"{module}: {score:.1%} killed ({killed}/{counted}; {len(status)} mutants, {len(equivalent)} equivalent, "
          f"{len(left)} not killed)")
    return 0 if score >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
