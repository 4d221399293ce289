"""Benchmark: the /v1 endpoint's overhead over calling the upstream directly, and 50 concurrent streaming clients.

Targets: routed (model ``coe``) overhead p50 <= 10 ms, router included (issue 12); named-expert overhead p50 <= 20 ms
(issue 7); 50 concurrent streaming clients without errors, with per-token latency reported. Set-up: a local
OpenAI-protocol upstream (tests/fakes/openai_server.py) in this process, the product served by Daphne in a subprocess
(PostgreSQL, Redis), the official ``openai`` client. Overhead: the same request sent alternately to the upstream
directly, to a named expert through our endpoint (not routed) and to ``coe`` (routed: the router's time is part of its
overhead); the upstream's own time is excluded by subtracting the direct call's. The server's own account of each
answer (its Server-Timing header: credentials and limits, version query, router, experts' rows, expert call, record)
is reported as medians, and the server's CPU time per call (Daphne's user + system time over 100 calls of each kind,
all its threads: what a call costs whatever else runs on the machine). The per-user limits are on (counted in Redis
on every call, set too high to refuse any). Run e.g.
    DJANGO_SECRET_KEY=... DATABASE_URL=postgres://postgres@127.0.0.1:5432/coe_bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/bench_gateway.py [--requests 300] [--clients 50] [--tokens 64] [--token-ms 20] [--limits-off]
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _live  # noqa: E402

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

EXPERT = "qwen2-7b-instruct"
QUESTION = "Write a Python function that merges two sorted lists."


def pct(values, q):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else None


def timed(fn, n):
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def server_timing(headers):
    """{step: ms} from a Server-Timing header ("name;dur=1.23, …")."""
    steps = {}
    for part in (headers.get("server-timing") or "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            steps[name] = float(dur)
    return steps


def overhead(direct, ours, n, server_cpu_s):
    messages = [{"role": "user", "content": QUESTION}]
    steps = {"named": [], "coe": []}

    def through_us(model, kind):
        raw = ours.chat.completions.with_raw_response.create(model=model, messages=messages)
        raw.parse()  # the same work as the direct call's client does
        steps[kind].append(server_timing(raw.headers))

    call_direct = lambda: direct.chat.completions.create(model="upstream", messages=messages)  # noqa: E731
    call_named = lambda: through_us(EXPERT, "named")  # noqa: E731
    call_coe = lambda: through_us("coe", "coe")  # noqa: E731

    def ttft(client, model):
        start = time.perf_counter()
        for chunk in client.chat.completions.create(model=model, messages=messages, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                return (time.perf_counter() - start) * 1000

    for fn in (call_direct, call_named, call_coe):
        timed(fn, 20)  # warm-up: connections, router, caches
    steps["named"].clear(), steps["coe"].clear()
    rows = {"direct": [], "named": [], "coe": [], "ttft_direct": [], "ttft_named": []}
    for _ in range(n // 10):  # interleaved, so drift on a noisy machine hits all sides alike
        rows["direct"] += timed(call_direct, 10)
        rows["named"] += timed(call_named, 10)
        rows["coe"] += timed(call_coe, 10)
        rows["ttft_direct"] += [ttft(direct, "upstream") for _ in range(5)]
        rows["ttft_named"] += [ttft(ours, EXPERT) for _ in range(5)]
    p = {k: statistics.median(v) for k, v in rows.items()}
    cpu = {}
    for kind, call in (("named", call_named), ("coe", call_coe)):  # what one call costs the server, whatever the load
        before = server_cpu_s()
        timed(call, 100)
        cpu[kind] = round((server_cpu_s() - before) * 10, 2)  # ms per call

    def medians(kind):
        names = list(dict.fromkeys(name for s in steps[kind] for name in s))
        return {name: round(statistics.median(s.get(name, 0.0) for s in steps[kind]), 2) for name in names}

    return {"requests_each": len(rows["direct"]),
            "direct_p50_ms": round(p["direct"], 2), "via_endpoint_p50_ms": round(p["named"], 2),
            "overhead_p50_ms": round(p["named"] - p["direct"], 2),
            "overhead_p95_ms": round(pct(rows["named"], 0.95) - pct(rows["direct"], 0.95), 2),
            "stream_ttft_overhead_p50_ms": round(p["ttft_named"] - p["ttft_direct"], 2),
            "routed_coe_p50_ms": round(p["coe"], 2),
            "routed_overhead_p50_ms": round(p["coe"] - p["direct"], 2),
            "routed_overhead_p95_ms": round(pct(rows["coe"], 0.95) - pct(rows["direct"], 0.95), 2),
            "server_timing_named_p50_ms": medians("named"), "server_timing_coe_p50_ms": medians("coe"),
            "server_cpu_ms_per_call": cpu}


async def streaming_clients(base_url, token, clients, rounds):
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=120)
    ttft, gaps, totals, errors, tokens = [], [], [], [], 0

    async def one(i):
        nonlocal tokens
        for r in range(rounds):
            start = last = time.perf_counter()
            first = True
            try:
                stream = await client.chat.completions.create(
                    model="coe", stream=True, messages=[{"role": "user", "content": f"{QUESTION} ({i}.{r})"}])
                async for chunk in stream:
                    if not (chunk.choices and chunk.choices[0].delta.content):
                        continue
                    now = time.perf_counter()
                    (ttft if first else gaps).append((now - last) * 1000)
                    first, last = False, now
                    tokens += 1
                totals.append((time.perf_counter() - start) * 1000)
            except Exception as exc:  # counted and reported: the target is zero
                errors.append(f"{type(exc).__name__}: {exc}"[:200])

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    wall = time.perf_counter() - start
    await client.close()
    return {"clients": clients, "streams": clients * rounds, "errors": len(errors), "first_errors": errors[:3],
            "ttft_p50_ms": pct(ttft, 0.5), "ttft_p95_ms": pct(ttft, 0.95),
            "per_token_p50_ms": pct(gaps, 0.5), "per_token_p95_ms": pct(gaps, 0.95),
            "per_token_p99_ms": pct(gaps, 0.99), "stream_total_p50_ms": pct(totals, 0.5),
            "tokens_per_s": round(tokens / wall, 1), "wall_s": round(wall, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="streams per client")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per streamed answer")
    parser.add_argument("--token-ms", type=float, default=20.0, help="upstream pause between tokens")
    parser.add_argument("--limits-off", action="store_true",
                        help="turn the per-user limits off (to measure what they cost; not how the product runs)")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    # The per-user limits stay on, as in production: every call is counted in Redis (requests, and tokens where the
    # product budgets them). They are set above what this one user sends (a few thousand calls and a few hundred
    # thousand tokens a minute), so the checks are made on every call and refuse none.
    os.environ["COE_RATE_LIMIT_PER_MIN"] = "0" if args.limits_off else "1000000"
    os.environ["COE_TOKENS_PER_MIN"] = "0" if args.limits_off else "1000000000"
    os.environ.setdefault("COE_UPSTREAM_ALLOWED_HOSTS", "127.0.0.1")  # the local upstream below is on loopback
    _live.setup_django()
    import openai
    from django.contrib.auth import get_user_model

    from access.services import issue_token
    from experts.services import save_expert
    from experts.selectors import current_map

    user, _ = get_user_model().objects.get_or_create(username="bench-gateway")
    user.is_staff = True  # an operator: may chat with the experts
    user.save()
    token = issue_token(user=user.username)[0]
    with FakeOpenAI() as upstream:
        for name in set(current_map().assignments.values()) | {EXPERT}:
            save_expert(name=name, data={"backend": "openai", "base_url": upstream.base_url, "upstream_model": "upstream",
                               "max_retries": 0, "timeout_s": 120.0, "first_token_timeout_s": 30.0})
        proc, port = _live.start_daphne()
        base = f"http://127.0.0.1:{port}/v1"
        try:
            upstream.behaviour.update(tokens=["word"] * 16, per_token_delay_s=0.0)
            direct = openai.OpenAI(base_url=upstream.base_url, api_key="x", max_retries=0)
            ours = openai.OpenAI(base_url=base, api_key=token, max_retries=0)
            result = {"overhead": overhead(direct, ours, args.requests, lambda: _live.cpu_s(proc.pid))}
            upstream.behaviour.update(tokens=["word"] * args.tokens, per_token_delay_s=args.token_ms / 1000)
            result["streaming"] = asyncio.run(streaming_clients(base, token, args.clients, args.rounds))
            result["streaming"]["upstream_token_ms"] = args.token_ms
            result["daphne_rss_mb"] = round(_live.rss_mb(proc.pid), 1)
        finally:
            _live.stop(proc)
    result["limits"] = "off" if args.limits_off else "on"
    result["load_average_1min"] = {"start": round(load_at_start[0], 2), "end": round(os.getloadavg()[0], 2)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
