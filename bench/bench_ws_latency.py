"""Benchmark: commit → websocket latency of every delivered decision, with N authenticated dashboard clients on ONE
Daphne process while a separate process routes R prompts/s (PostgreSQL + Redis).

Target (issue 12): 1,000 clients, 300 prompts/s, 0 rejected, commit → client p95 <= 250 ms.

What is timed (issue 17): every ``dashboard.summary`` carries ``committed`` = [[commit time, n], …] for each commit
folded into it (the feed inside shows at most 25 decisions; the counts and these pairs cover all of them). A client
records arrival − commit time once per decision: every delivered decision is timed, none is sampled. ``produced`` is
the generator's count, checked against the database; ``expected`` = produced × clients connected from start to end;
``delivered`` = decisions accounted for at the clients (a shed or dropped client delivers fewer).

Processes: this one (set-up, then all clients on one asyncio loop, minimal RFC 6455 framing), one Daphne, and the
generator (``--role generate``: the demo generator's loop — one routed batch and one commit per 0.1 s tick — as user
bench-owner, source "api", so the live path redacts). Clients spread over 20 users: the owner (reads its prompts), an
auditor (view-all), 18 viewers (text blanked), i.e. three variants per message. Every wait has a timeout: a client that
fails is counted, never waited for. Run e.g.
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/coe_bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/bench_ws_latency.py [--clients 1000] [--rate 300] [--seconds 60]
"""
import argparse
import asyncio
import base64
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _live  # noqa: E402

USERS = 20
HIST_MS = 20_000  # latency histogram: 1 ms bins up to 20 s, then one overflow bin
DECODER = json.JSONDecoder()


class Stats:
    def __init__(self):
        self.hist = [0] * (HIST_MS + 1)
        self.rejected, self.failed, self.closed = {}, {}, {}
        self.events = {}

    def latency(self, seconds, weight):
        self.hist[min(HIST_MS, max(0, int(seconds * 1000)))] += weight

    def percentile(self, p):
        total = sum(self.hist)
        if not total:
            return None
        rank, seen = p * total, 0
        for ms, n in enumerate(self.hist):
            seen += n
            if seen >= rank:
                return ms + 1  # upper edge of the bin
        return HIST_MS


class Client(asyncio.Protocol):
    """One websocket client: handshake, then unmasked server frames; answers pings (Daphne drops silent clients)."""

    def __init__(self, port, token, stats):
        self.port, self.token, self.stats = port, token, stats
        self.buffer, self.upgraded, self.transport = bytearray(), False, None
        self.hello = asyncio.get_running_loop().create_future()
        self.delivered, self.messages, self.close_code, self.lost = 0, 0, None, False

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET /ws/events/?groups=dashboard HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                         f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{self.port}\r\n"
                         f"Authorization: Bearer {self.token}\r\n\r\n").encode())

    def data_received(self, data):
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:self.buffer.find(b"\r\n")]).decode("latin-1")
            del self.buffer[:end + 4]
            if " 101 " not in status + " ":
                code = status.split(" ")[1] if " " in status else status
                self._settle(ConnectionRefusedError(f"HTTP {code}"))
                self.transport.close()
                return
            self.upgraded = True
        self._frames()

    def _frames(self):
        buf, at = self.buffer, 0
        while len(buf) - at >= 2:
            b1, b2 = buf[at], buf[at + 1]
            n, head = b2 & 0x7F, 2
            if n == 126:
                if len(buf) - at < 4:
                    break
                n, head = struct.unpack_from("!H", buf, at + 2)[0], 4
            elif n == 127:
                if len(buf) - at < 10:
                    break
                n, head = struct.unpack_from("!Q", buf, at + 2)[0], 10
            if len(buf) - at < head + n:
                break
            payload = bytes(buf[at + head:at + head + n])
            at += head + n
            opcode = b1 & 0x0F
            if opcode == 1:
                self._text(payload)
            elif opcode == 9:
                self._send(0xA, payload)
            elif opcode == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        del buf[:at]

    def _text(self, payload):
        now = time.time()
        self.messages += 1
        text = payload.decode()
        at = text.find('"committed": ')
        if at >= 0:
            pairs, _ = DECODER.raw_decode(text, at + len('"committed": '))
            for t, n in pairs:
                self.stats.latency(now - t, n)
                self.delivered += n
            return
        event = json.loads(text)["event"]
        self.stats.events[event] = self.stats.events.get(event, 0) + 1
        if event == "hello":
            self._settle(None)

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def _settle(self, error):
        if not self.hello.done():
            self.hello.set_result(error)

    def connection_lost(self, exc):
        self.lost = True
        self._settle(ConnectionResetError(str(exc or "closed before hello")))


async def connect_all(port, tokens, stats, concurrency, timeout):
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def one(token):
        async with gate:
            client = Client(port, token, stats)
            try:
                await asyncio.wait_for(loop.create_connection(lambda: client, "127.0.0.1", port), timeout)
                error = await asyncio.wait_for(client.hello, timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                error = exc
            if error is None:
                return client
            reason = str(error) if isinstance(error, ConnectionRefusedError) else type(error).__name__
            bucket = stats.rejected if reason.startswith("HTTP") else stats.failed
            bucket[reason] = bucket.get(reason, 0) + 1
            if client.transport is not None:
                client.transport.abort()
            return None

    clients = await asyncio.gather(*(one(t) for t in tokens))
    return [c for c in clients if c is not None]


def cpu_seconds(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return None


def processes(comm, cmdline_has=""):
    """Pids whose command name is ``comm`` (and whose command line contains ``cmdline_has``)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == comm and \
                        cmdline_has in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def cpu_snapshot(groups):
    """{group: {pid: CPU seconds}}; ``groups``: {name: callable returning pids} (re-listed: backends come and go)."""
    return {name: {pid: t for pid in pids() if (t := cpu_seconds(pid)) is not None} for name, pids in groups.items()}


def cpu_used(before, after, wall):
    """Cores used per group between two snapshots (a process that started meanwhile counts from zero)."""
    return {name: sum(t - before[name].get(pid, 0.0) for pid, t in after[name].items()) / wall for name in after}


def machine_busy():
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(parts) - parts[3] - parts[4], sum(parts)  # (busy, total) jiffies


# --- the generator process ----------------------------------------------------------------------------------------

def generate(rate, seconds, source, fanout_only):
    """Route ``rate`` prompts/s for ``seconds`` (after "go" on stdin): one routed batch and one commit per tick.
    ``fanout_only``: skip the router and the database — hand the coalescer decisions shaped like routed ones, with
    their publish time as commit time — to measure the live path alone (not the target's set-up)."""
    _live.setup_django()
    import random

    from django.contrib.auth import get_user_model

    from coe_site import realtime
    from routing.defaults import seed_examples
    from routing.models import RoutingDecision
    from routing.selectors import active_router, feed_item
    from routing.services import route_prompts

    owner = get_user_model().objects.get(username="bench-owner")
    prompts = [p for p, _ in seed_examples()]
    random.Random(0).shuffle(prompts)
    active_router()
    route_prompts(prompts=prompts[:8], source=source, user=owner)  # warm: embedder, map, connections
    first = (RoutingDecision.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1

    def fake(batch):
        now = time.time()
        realtime.dashboard.add_decisions([feed_item(
            RoutingDecision(id=-1, user_id=owner.pk, source=source, prompt=p, category="math", confidence=0.9,
                            entropy=0.2, fallback_reason="", latency_ms=3.0), "Qwen2-7B-Instruct", t=now)
            for p in batch])

    print("ready", flush=True)
    sys.stdin.readline()
    start, sent, cursor, tick = time.monotonic(), 0, 0, 0.1
    while (woke := time.monotonic()) - start < seconds:
        due = min(int((woke - start) * rate) + 1 - sent, max(1, int(rate)))
        if due > 0:
            batch = [prompts[(cursor + i) % len(prompts)] for i in range(due)]
            if fanout_only:
                fake(batch)
            else:
                route_prompts(prompts=batch, source=source, user=owner)
            cursor, sent = (cursor + due) % len(prompts), sent + due
        time.sleep(max(0.0, max(start + sent / rate, woke + tick) - time.monotonic()))
    elapsed = time.monotonic() - start
    time.sleep(0.5)  # the coalescer's last summary
    stored = None if fanout_only else \
        RoutingDecision.objects.filter(id__gte=first, user=owner, source=source).count()
    print(json.dumps({"sent": sent, "seconds": elapsed, "stored": stored}), flush=True)


# --- the main process ----------------------------------------------------------------------------------------------

def prepare(clients):
    """Users (owner, auditor, viewers) and one token per client; old bench tokens deleted."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from access.models import ApiToken
    from access.services import issue_token

    User = get_user_model()
    users = []
    for i in range(USERS):
        name = "bench-owner" if i == 0 else "bench-auditor" if i == 1 else f"bench-viewer-{i}"
        user, _ = User.objects.get_or_create(username=name)
        user.groups.set([Group.objects.get(name="Operators" if i == 0 else "Auditors" if i == 1 else "Viewers")])
        users.append(user)
    ApiToken.objects.filter(user__in=users).delete()
    return [issue_token(user=users[i % USERS], scopes=["read"], expires="1d", name="bench")[0] for i in range(clients)]


def start_daphne(log_path):
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "coe_site.asgi:application"], cwd=_live.ROOT, stdout=log, stderr=log,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            __import__("socket").create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    _live.stop(proc)
    sys.exit(f"daphne did not start; see {log_path}")


def read_line(proc, timeout):
    """One stdout line of ``proc`` within ``timeout`` seconds, or None."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if sel.select(timeout):
            return proc.stdout.readline().strip()
    return None


async def run(args, port, tokens, daphne, generator):
    stats = Stats()
    t0 = time.monotonic()
    clients = await connect_all(port, tokens, stats, args.connect_concurrency, args.timeout)
    connect_s = time.monotonic() - t0
    print(f"connected {len(clients)}/{len(tokens)} in {connect_s:.1f} s; rejected {stats.rejected or 0}; "
          f"failed {stats.failed or 0}; routing starts now (daphne pid {daphne.pid}, generator pid {generator.pid})",
          flush=True)
    db_name = os.environ["DATABASE_URL"].rsplit("/", 1)[-1]
    watched = {"daphne": lambda: [daphne.pid], "generator": lambda: [generator.pid],
               "clients (this process)": lambda: [os.getpid()],
               f"postgres (backends of {db_name})": lambda: processes("postgres", f" {db_name} "),
               "redis-server (shared with other jobs)": lambda: processes("redis-server")}
    before = cpu_snapshot(watched)
    busy0, total0 = machine_busy()
    load0 = os.getloadavg()
    rss0 = _live.rss_mb(daphne.pid)
    wall0 = time.monotonic()
    generator.stdin.write("go\n")
    generator.stdin.flush()
    line = await asyncio.to_thread(read_line, generator, args.seconds + 60)
    gen = json.loads(line) if line else {"sent": None, "seconds": None, "stored": None}
    await asyncio.sleep(args.grace)  # the last summaries in flight
    wall = time.monotonic() - wall0
    busy1, total1 = machine_busy()
    cpu = cpu_used(before, cpu_snapshot(watched), wall)
    closed = {}
    for c in clients:
        if c.close_code is not None or c.lost:
            key = str(c.close_code or "connection lost")
            closed[key] = closed.get(key, 0) + 1
    connected_to_end = [c for c in clients if not c.lost and c.close_code is None]
    for c in clients:
        c.transport.abort()
    return {"stats": stats, "clients": clients, "to_end": connected_to_end, "closed": closed, "gen": gen,
            "connect_s": connect_s,
            "cpu": cpu, "machine_busy": (busy1 - busy0) / max(1, total1 - total0) * os.cpu_count(),
            "load": (load0, os.getloadavg()), "rss": (rss0, _live.rss_mb(daphne.pid)), "wall": wall}


def report(args, r):
    stats, gen = r["stats"], r["gen"]
    produced = gen["sent"] or 0
    expected = produced * len(r["to_end"])
    delivered = sum(c.delivered for c in r["to_end"])
    per_client = sorted(c.delivered for c in r["to_end"]) or [0]
    pct = {p: stats.percentile(p / 100) for p in (50, 95, 99, 100)}
    out = {
        "clients": args.clients, "connected": len(r["clients"]), "rejected": stats.rejected, "failed": stats.failed,
        "closed_during_run": r["closed"], "connect_s": round(r["connect_s"], 1),
        "fanout_only": args.fanout_only, "target_rate": args.rate,
        "achieved_rate": round(produced / gen["seconds"], 1) if gen["seconds"] else None,
        "produced": produced, "stored_in_db": gen["stored"], "expected_deliveries": expected,
        "delivered": delivered, "per_client_min": per_client[0], "per_client_max": per_client[-1],
        "latency_ms": {"p50": pct[50], "p95": pct[95], "p99": pct[99], "max": pct[100]},
        "messages_per_client_per_s": round(sum(c.messages for c in r["to_end"]) / max(1, len(r["to_end"]))
                                           / r["wall"], 1),
        "other_events": stats.events,
        "cpu_cores_used": {k: round(v, 2) for k, v in r["cpu"].items()},
        "daphne_cpu_us_per_frame": round(r["cpu"]["daphne"] * r["wall"] * 1e6 / max(1, sum(c.messages for c in
                                                                                        r["clients"]))),
        "machine_cores_busy": round(r["machine_busy"], 2), "cores": os.cpu_count(),
        "loadavg_start_end": [round(r["load"][0][0], 2), round(r["load"][1][0], 2)],
        "daphne_rss_mb_start_end": [round(r["rss"][0]), round(r["rss"][1])],
    }
    print(json.dumps(out, indent=1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=300)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--source", default="api", choices=["api", "demo"], help="demo prompts are public (no redaction)")
    ap.add_argument("--grace", type=float, default=3.0, help="seconds to wait for the last summaries")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-client connect + hello timeout")
    ap.add_argument("--connect-concurrency", type=int, default=100)
    ap.add_argument("--fanout-only", action="store_true",
                    help="no router, no database writes: decisions shaped like routed ones go straight to the "
                         "coalescer (measures the live path alone; not the target's set-up)")
    ap.add_argument("--role", default="main", choices=["main", "generate"])
    args = ap.parse_args()
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + base64.b64encode(os.urandom(24)).decode())
    if args.role == "generate":
        return generate(args.rate, args.seconds, args.source, args.fanout_only)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.clients * 2 + 1024)), hard))
    _live.setup_django()
    tokens = prepare(args.clients)
    from django.db import connection

    connection.close()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-ws-"))
    daphne, port = start_daphne(log_dir / "daphne.log")
    generator = subprocess.Popen([sys.executable, __file__, "--role", "generate", "--rate", str(args.rate),
                                  "--seconds", str(args.seconds), "--source", args.source,
                                  *(["--fanout-only"] if args.fanout_only else [])], cwd=_live.ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        if read_line(generator, 300) != "ready":
            sys.exit("the generator did not start")
        result = asyncio.run(asyncio.wait_for(run(args, port, tokens, daphne, generator),
                                              args.timeout * 4 + args.seconds + 120))
        report(args, result)
        print(f"daphne log: {log_dir / 'daphne.log'}")
    finally:
        _live.stop(generator)
        _live.stop(daphne)


if __name__ == "__main__":
    main()
