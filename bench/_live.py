"""Shared set-up for the live-operations benchmarks: Django on the distributed services, a bench database with
a trained router, subprocesses (Celery worker, Daphne) on the same environment, and RSS readings."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup_django():
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL, a database the bench may fill) and REDIS_URL: the targets are "
                 "for the distributed mode")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coe_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from routing.services import ensure_router

    ensure_router()  # trains the default router on a fresh bench database (about a minute)


def spawn(args, **env):
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def start_worker(queue):
    return spawn(["celery", "-A", "coe_site", "worker", "--pool=solo", "--concurrency=1", "-Q", queue,
                  "-n", f"bench-{queue}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
                  "--loglevel=WARNING"], COE_BATCH_QUEUE=queue)


def start_daphne():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = spawn(["daphne", "-b", "127.0.0.1", "-p", str(port), "coe_site.asgi:application"])
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("daphne did not start")


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid):
    """CPU seconds (user + system, all threads) a process has used so far: on a machine shared with other jobs, what
    a run cost tells more than how long it took."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def prompts(n):
    """n prompts cycled from the shipped seed prompts, each made distinct (realistic length and mix)."""
    from routing.defaults import seed_examples

    seeds = seed_examples()
    return [(f"{seeds[i % len(seeds)][0]} (#{i})", seeds[i % len(seeds)][1]) for i in range(n)]
