"""Benchmark: commit → websocket latency at the clients, at a steady routing rate with N connected clients.

Target (issue 3): p95 <= 250 ms at 100 prompts/s with 20 clients (PostgreSQL, Redis channel layer, Daphne).
This process generates the traffic with the demo generator (route_prompts: one batched call and one commit per
tick, like a worker's chunk); each decision carries the time its transaction committed, and every client
records arrival - commit for every decision it receives (same machine, same clock). Run e.g.
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/coe_bench REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/bench_ws_latency.py [--rate 100] [--clients 20] [--seconds 30]
"""
import argparse
import asyncio
import base64
import json
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _live  # noqa: E402


async def ws_client(port, token, latencies, counts, ready):
    """A minimal RFC 6455 client (text frames from the server are unmasked and, from Daphne, unfragmented)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws/events/?groups=dashboard HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    status = await reader.readuntil(b"\r\n\r\n")
    assert b" 101 " in status.split(b"\r\n")[0], status
    while True:
        b1, b2 = await reader.readexactly(2)
        n = b2 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(n)
        if b1 & 0x0F != 1:
            continue
        now = time.time()
        message = json.loads(payload)
        if message["event"] == "hello":
            ready.append(1)
        elif message["event"] == "dashboard.summary":
            counts.append(1)
            latencies.extend(now - d["t"] for d in message["data"]["decisions"])


async def clients_main(port, token, n, seconds, rate, results):
    latencies, counts, ready = [], [], []
    tasks = [asyncio.create_task(ws_client(port, token, latencies, counts, ready)) for _ in range(n)]
    while len(ready) < n:
        await asyncio.sleep(0.05)
    stop = threading.Event()
    generator = threading.Thread(target=generate, args=(rate, seconds, stop, results))
    generator.start()
    await asyncio.to_thread(generator.join)
    await asyncio.sleep(1.0)
    for t in tasks:
        t.cancel()
    results.update(latencies=latencies, messages=len(counts))


def generate(rate, seconds, stop, results):
    from django.db import connection

    from routing.services import demo_prompts, run_demo_traffic

    t0 = time.perf_counter()
    results["sent"] = run_demo_traffic(rate, demo_prompts(), stop, duration=seconds)
    results["gen_s"] = time.perf_counter() - t0
    connection.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    _live.setup_django()
    from access.services import issue_token
    from django.contrib.auth import get_user_model
    from routing.selectors import active_router

    get_user_model().objects.get_or_create(username="bench")
    token = issue_token(user="bench")[0]
    active_router()
    daphne, port = _live.start_daphne()
    results = {}
    try:
        asyncio.run(clients_main(port, token, args.clients, args.seconds, args.rate, results))
    finally:
        _live.stop(daphne)
    lat = sorted(results["latencies"])
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    print(f"clients={args.clients} target_rate={args.rate:g}/s achieved_rate={results['sent'] / results['gen_s']:.0f}/s "
          f"decisions={results['sent']} deliveries={len(lat)} messages_per_client_per_s="
          f"{results['messages'] / args.clients / results['gen_s']:.1f} "
          f"latency_ms p50={pct(0.5):.0f} p95={pct(0.95):.0f} p99={pct(0.99):.0f} max={lat[-1] * 1000:.0f}")


if __name__ == "__main__":
    main()
