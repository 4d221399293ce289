"""Benchmark: simulator downloads recomputed in every GET (before) vs written once by the worker and streamed from
the database (after, issue 12).

One run (sn40l-8, LRU, `coe` batching, 150 uniform 7B experts, Zipf 1.0 at 0.5 requests/s, seed 0; --requests,
1,000,000 by default) is stored in the database Django is configured for and executed as a worker executes it
(simulation, then every download written as gzip parts). Each measurement then runs in a fresh process:
  worker          services.execute_run: the simulation, and the time to generate and store the downloads; then,
                  apart, the peak Python allocations of the download writer alone (tracemalloc)
  before          what the old view did per GET: re-simulate, format the table (to_csv / json.dumps(chrome_trace))
                  and hold it in an HttpResponse
  wsgi-identity   a GET through Django's test client (the WSGI path), inflated piece by piece for the client
  wsgi-gzip       the same GET with Accept-Encoding: gzip (the stored bytes as they are)
  asgi-identity   the GET through AsyncClient (ASGI: the async iterator)
Memory is the process's peak RSS growth during the step (ru_maxrss minus the RSS just before it).
Run, in distributed mode's storage (PostgreSQL):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/hsim DJANGO_SECRET_KEY=bench \\
      .venv/bin/python bench/bench_hwsim_downloads.py [--requests N] [--run ID] [--skip-before]
  (--run ID --levels: the run's requests table at zlib levels 1-6, why the writer uses level 1)
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coe_site.settings")
os.environ.setdefault("COE_JOBS_IN_BACKGROUND", "0")
READER = "bench-downloads-reader"


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measured(step):
    """(seconds, peak RSS growth in bytes, step's return value)."""
    before, t0 = rss(), time.perf_counter()
    value = step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return time.perf_counter() - t0, max(0, peak - before), value


def setup():
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host name is allowed


def phase_worker(run_id):
    from hwsim import exports, services
    from hwsim.models import RunExport, SimulationRun

    timed = {}

    def timing(name, fn):
        def wrapped(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timed[name] = time.perf_counter() - t0
        return wrapped

    services.simulate = timing("simulate_s", services.simulate)
    exports.write = timing("write_downloads_s", exports.write)
    seconds, growth, status = measured(lambda: services.execute_run(run_id))
    run = SimulationRun.objects.get(pk=run_id)
    stored = {e.name: {"size": e.size, "stored": e.stored, "parts": e.parts}
              for e in RunExport.objects.filter(run=run, token=run.exports_token)}
    return {"status": status, "seconds": seconds, **timed, "peak_rss_growth": growth, "exports": stored}


def phase_export_memory(run_id):
    """Python heap the download writer itself allocates (tracemalloc, started after the simulation): it streams, so
    this stays small whatever the run's size. Written under a throwaway claim, deleted afterwards."""
    import tracemalloc

    from hwsim import exports, services
    from hwsim.models import SimulationRun

    result = services.rerun(SimulationRun.objects.get(pk=run_id))
    tracemalloc.start()
    try:
        exports.write(run_id, "bench-memory", result)
        return {"tracemalloc_peak": tracemalloc.get_traced_memory()[1]}
    finally:
        tracemalloc.stop()
        exports.discard_claim(run_id, "bench-memory")


def phase_levels(run_id):
    """The requests table compressed at zlib levels 1-6: why the writer uses level 1."""
    import zlib

    from hwsim.engine import to_csv
    from hwsim.models import SimulationRun
    from hwsim.services import rerun

    data = to_csv(rerun(SimulationRun.objects.get(pk=run_id)), "requests").encode()
    levels = {}
    for level in range(1, 7):
        t0 = time.perf_counter()
        levels[level] = {"bytes": len(zlib.compress(data, level)), "seconds": time.perf_counter() - t0}
    return {"csv_bytes": len(data), "levels": levels}


def phase_get(run_id, name, mode):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from hwsim.models import SimulationRun

    run = SimulationRun.objects.get(pk=run_id)
    table = name.removesuffix(".csv")
    url = reverse("hwsim:run-trace", args=[run_id]) if name == "trace.json" else \
        reverse("hwsim:run-csv", args=[run_id, table])
    user = get_user_model().objects.get(username=READER)
    from django.test import Client  # warm up: the first request through the stack loads what every request uses

    warm = Client()
    warm.force_login(user)
    assert warm.get(reverse("hwsim:run-status", args=[run_id])).status_code == 200
    import hwsim.engine  # noqa: F401  (the engine, loaded in a web process anyway)

    if mode == "before":  # the view before issue 12, verbatim
        from django.http import HttpResponse

        from hwsim.engine import chrome_trace, to_csv
        from hwsim.services import rerun

        def step():
            if name == "trace.json":
                response = HttpResponse(json.dumps(chrome_trace(rerun(run))), content_type="application/json")
            else:
                response = HttpResponse(to_csv(rerun(run), table), content_type="text/csv")
            return len(response.content)
    elif mode.startswith("wsgi"):
        client = Client()
        client.force_login(user)
        encoding = "gzip" if mode == "wsgi-gzip" else "identity"

        def step():
            response = client.get(url, HTTP_ACCEPT_ENCODING=encoding)
            assert response.status_code == 200, response.content
            return sum(len(piece) for piece in response.streaming_content)
    else:
        import asyncio

        from django.test import AsyncClient

        client = AsyncClient()
        client.force_login(user)

        async def get():
            response = await client.get(url, headers={"Accept-Encoding": "identity"})
            assert response.status_code == 200 and response.is_async
            n = 0
            async for piece in response.streaming_content:
                n += len(piece)
            return n

        def step():
            return asyncio.run(get())
    seconds, growth, sent = measured(step)
    return {"name": name, "mode": mode, "seconds": seconds, "peak_rss_growth": growth, "bytes_sent": sent}


def child(*args):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True,
                         cwd=ROOT, env=os.environ)
    if out.returncode:
        sys.exit(f"step {args} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def prepare(requests):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from hwsim import parameters as P
    from hwsim.models import SimulationRun

    call_command("migrate", verbosity=0)
    get_user_model().objects.get_or_create(username=READER)
    params = P.normalise({"experts": {"source": "uniform", "count": 150, "params": 7e9},
                          "workload": {"requests": requests, "zipf_s": 1.0, "rate": 0.5}, "seed": 0})
    return SimulationRun.objects.create(name=f"bench {P.describe(params)}", parameters=params,
                                        progress_total=requests, exports_status="pending").pk


def mb(n):
    return f"{n / 1e6:,.1f} MB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--run", type=int, help="measure the downloads of this finished run (no worker step)")
    ap.add_argument("--skip-before", action="store_true", help="do not measure the old per-GET recompute")
    ap.add_argument("--repeat", type=int, default=3, help="GETs per download and mode (after)")
    ap.add_argument("--levels", action="store_true", help="only compare zlib levels on the run's requests table")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    setup()
    if args.phase == "worker":
        print(json.dumps(phase_worker(args.run)))
        return
    if args.phase == "levels":
        print(json.dumps(phase_levels(args.run)))
        return
    if args.phase == "export-memory":
        print(json.dumps(phase_export_memory(args.run)))
        return
    if args.phase == "get":
        print(json.dumps(phase_get(args.run, args.name, args.mode)))
        return

    from hwsim.exports import NAMES

    print(f"load average at start: {os.getloadavg()}", flush=True)
    run_id = args.run
    if args.levels:
        out = child("--phase", "levels", "--run", str(run_id))
        for level, r in out["levels"].items():
            print(f"requests.csv {mb(out['csv_bytes'])} at zlib level {level}: {mb(r['bytes'])} in "
                  f"{r['seconds']:.2f} s")
        return
    if run_id is None:
        run_id = prepare(args.requests)
        w = child("--phase", "worker", "--run", str(run_id))
        print(f"worker: run {run_id} {w['status']} in {w['seconds']:.1f} s: simulate {w['simulate_s']:.1f} s, "
              f"generate + store downloads {w['write_downloads_s']:.1f} s, peak RSS growth "
              f"{mb(w['peak_rss_growth'])}", flush=True)
        for name, e in w["exports"].items():
            print(f"  stored {name:15s} {mb(e['size'])} -> {mb(e['stored'])} gzip in {e['parts']} parts")
        print(f"  total stored {mb(sum(e['stored'] for e in w['exports'].values()))}", flush=True)
        m = child("--phase", "export-memory", "--run", str(run_id))
        print(f"  the download writer's own peak Python allocations: {mb(m['tracemalloc_peak'])}", flush=True)
    modes = ["wsgi-identity", "wsgi-gzip", "asgi-identity"] + ([] if args.skip_before else ["before"])
    for name in NAMES:
        for mode in modes:
            reps = [child("--phase", "get", "--run", str(run_id), "--name", name, "--mode", mode)
                    for _ in range(1 if mode == "before" else args.repeat)]
            secs = sorted(r["seconds"] for r in reps)
            print(f"GET {name:15s} {mode:14s} {secs[0]:7.2f}-{secs[-1]:.2f} s  peak RSS growth "
                  f"{mb(max(r['peak_rss_growth'] for r in reps))}  sent {mb(reps[0]['bytes_sent'])}", flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
