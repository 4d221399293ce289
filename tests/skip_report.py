"""At the end of a run, say which groups of tests were skipped, why, and what to start to run them; in CI, fail the
run when a test skipped for a reason CI can meet.

Without PostgreSQL and Redis a plain ``./test.sh`` skips the worker, race, live-propagation and live-dashboard tests:
that must be said where people look (the end of the output), not only in ``-rs`` lines. CI runs a PostgreSQL + Redis
pass and an embedded pass: the only skips it accepts are tests that say they need the distributed pass (or
PostgreSQL) while the embedded pass is running. Hooks re-exported by tests/conftest.py.
"""
import os
import re

SERVICES = re.compile(r"DATABASE_URL|REDIS_URL|PostgreSQL|Redis|broker|distributed pass", re.I)
GROUPS = [  # (name, matches a skip reason, how to run the group)
    ("services", SERVICES.search,
     "start PostgreSQL and Redis, then: DATABASE_URL=postgres://postgres@127.0.0.1:5432/coe "
     "REDIS_URL=redis://127.0.0.1:6379/0 ./test.sh"),
    ("browser", re.compile(r"chromium", re.I).search,
     "install Debian's chromium (apt-get install chromium; ./test.sh does it when run as root)"),
    ("data", re.compile(r"shared.data|data not available", re.I).search,
     "put the benchmark data in ../shared/data beside the checkout"),
]
# In CI's embedded pass, a test may skip only because it needs the PostgreSQL + Redis pass, which runs it.
CI_ACCEPTS = re.compile(r"distributed pass|PostgreSQL \+ Redis pass|embedded SQLite pass skips it")


def _reason(report):
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def _skips(config):
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return [(r.nodeid, _reason(r)) for r in (reporter.stats.get("skipped", []) if reporter else [])
            if r.when in ("setup", "call")]


def _refused_in_ci(skips):
    embedded = not os.environ.get("DATABASE_URL")
    return [(node, why) for node, why in skips if not (embedded and CI_ACCEPTS.search(why))]


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI") and _refused_in_ci(_skips(session.config)) and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skips = _skips(config)
    if not skips:
        return
    terminalreporter.section("skipped test groups")
    grouped = {}
    for node, why in skips:
        name, hint = next(((n, h) for n, match, h in GROUPS if match(why)), ("other", None))
        grouped.setdefault((name, hint), {}).setdefault(why, []).append(node)
    for (name, hint), reasons in grouped.items():
        count = sum(len(nodes) for nodes in reasons.values())
        terminalreporter.write_line(f"{name} tests skipped: {count}")
        for why, nodes in reasons.items():
            files = sorted({n.split("::")[0] for n in nodes})
            terminalreporter.write_line(f"  {len(nodes)} × {why}  ({', '.join(files)})")
        if hint:
            terminalreporter.write_line(f"  to run them: {hint}")
    if os.environ.get("CI"):
        refused = _refused_in_ci(skips)
        if refused:
            terminalreporter.write_line(f"CI: {len(refused)} tests skipped for a reason CI can meet (failing the run):",
                                        red=True, bold=True)
            for node, why in refused:
                terminalreporter.write_line(f"  {node}: {why}", red=True)
