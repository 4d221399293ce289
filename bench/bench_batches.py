"""Benchmark: an N-prompt upload routed and persisted end to end by one Celery worker (PostgreSQL + Redis).

Target (issue 12): 10,000 prompts at >= 300 prompts/s from POST /api/batches to the batch's last commit, with one
worker; and, with --memory over 100,000 prompts, worker RSS flat (no growth beyond a few MB). The worker is warmed
with a small batch first (a long-lived worker has its router loaded). Also printed: the worker's CPU seconds and
its share of the wall time (1.0 = one core's worth; its two embedding threads can use two), and the load average,
since on a shared machine throughput says as much about the other jobs as about this code. Run with the services'
URLs, e.g.
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/coe_bench REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/bench_batches.py [--prompts 10000] [--chunk 256] [--memory]
"""
import argparse
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _live  # noqa: E402


def upload(client, rows):
    body = "\n".join(json.dumps({"prompt": p}) for p, _ in rows)
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = client.post("/api/batches", {"file": SimpleUploadedFile("bench.jsonl", body.encode())})
    assert r.status_code == 200, r.content
    return r.json()["id"]


def wait_done(batch_id, worker, every=None):
    from routing.models import Batch

    samples, next_sample = [], 0.0
    while True:
        batch = Batch.objects.get(pk=batch_id)
        if every is not None and batch.done >= next_sample:
            samples.append((batch.done, _live.rss_mb(worker.pid)))
            print(f"  done={batch.done} worker_rss_mb={samples[-1][1]:.1f}", flush=True)
            next_sample = batch.done + every
        if batch.status in ("done", "failed"):
            return batch, samples
        assert worker.poll() is None, "the worker died"
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=10_000)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--memory", action="store_true", help="sample the worker's RSS as the batch progresses")
    args = ap.parse_args()
    os.environ["COE_BATCH_CHUNK_SIZE"] = str(args.chunk)
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    os.environ["COE_BATCH_QUEUE"] = queue
    _live.setup_django()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench")
    user.groups.add(Group.objects.get(name="Operators"))  # uploading batches needs the operator role
    client = Client()
    client.force_login(user)
    worker = _live.start_worker(queue)
    try:
        warm, _ = wait_done(upload(client, _live.prompts(args.chunk)), worker)
        rows = _live.prompts(args.prompts)
        load, cpu = os.getloadavg()[0], _live.cpu_s(worker.pid)
        t0 = time.perf_counter()
        batch_id = upload(client, rows)
        t_upload = time.perf_counter() - t0
        batch, samples = wait_done(batch_id, worker, every=args.prompts / 20 if args.memory else None)
        total = time.perf_counter() - t0
        cpu = _live.cpu_s(worker.pid) - cpu
    finally:
        _live.stop(worker)
    from routing.models import RoutingDecision

    stored = RoutingDecision.objects.filter(batch_id=batch_id).count()
    print(f"prompts={args.prompts} chunk={args.chunk} status={batch.status} stored={stored} "
          f"upload_s={t_upload:.2f} end_to_end_s={total:.1f} prompts_per_s={args.prompts / total:.0f} "
          f"worker_cpu_s={cpu:.1f} worker_cpu_share={cpu / total:.2f} load_average_1min={load:.2f}->"
          f"{os.getloadavg()[0]:.2f}")
    if samples:
        rss = [mb for _, mb in samples]
        after_warm = [mb for done, mb in samples if done >= args.prompts / 10]
        print("rss_mb by prompts done: " + " ".join(f"{d}:{mb:.0f}" for d, mb in samples))
        print(f"rss_mb first={rss[0]:.0f} last={rss[-1]:.0f} min={min(rss):.0f} max={max(rss):.0f} "
              f"growth_after_10pct={after_warm[-1] - after_warm[0]:+.1f} MB")


if __name__ == "__main__":
    main()
