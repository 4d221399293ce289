"""`manage.py simulate`: one simulation from the command line, printed as summary metrics."""
import json
import time

from django.core.management.base import BaseCommand, CommandError

from hwsim.engine import BATCHING, POLICIES, PRESETS, ConfigError, simulate
from hwsim import parameters as P
from hwsim import selectors

SHOWN = ("wall_seconds", "requests", "switches", "hbm_hit_rate", "switch_ms_mean", "ttft_p50_ms", "ttft_p99_ms",
         "e2e_p50_ms", "e2e_p99_ms", "spilled_experts")


def parse_workload(text, requests, rate):
    """zipf:S | replay:recent | replay:recent:N | replay:BATCH_ID (replay:N = the last N decisions while
    routing.Batch does not exist)."""
    kind, _, arg = text.partition(":")
    if kind == "zipf":
        try:
            return {"kind": "synthetic", "requests": requests, "zipf_s": float(arg or 1.0), "rate": rate}
        except ValueError:
            raise CommandError(f"--workload zipf:S needs a number S >= 0, got {arg!r}") from None
    if kind == "replay":
        if arg == "recent":
            return {"kind": "replay", "source": "recent", "count": requests, "rate": rate}
        if arg.startswith("recent:") and arg[7:].isdigit():
            return {"kind": "replay", "source": "recent", "count": int(arg[7:]), "rate": rate}
        if arg.isdigit():
            if selectors.batch_model() is None:  # no batches yet: a number means the last N decisions
                return {"kind": "replay", "source": "recent", "count": int(arg), "rate": rate}
            return {"kind": "replay", "source": "batch", "batch_id": int(arg), "rate": rate}
    raise CommandError(f"--workload must be zipf:S, replay:recent, replay:recent:N or replay:BATCH_ID, got {text!r}")


class Command(BaseCommand):
    help = ("Simulate serving a CoE on one machine and print summary metrics (with --json as one JSON object). "
            "Without --experts the current map's experts are used.")

    def add_arguments(self, parser):
        parser.add_argument("--node", default="sn40l-8",
                            help=f"machine preset: {', '.join(PRESETS)} (the dgx-h100-nvme/-dram presets load "
                                 "experts from NVMe or host DRAM, with ServerlessLLM Store or, -naive, safetensors)")
        parser.add_argument("--experts", type=int, help="number of uniform experts (default: the current map)")
        parser.add_argument("--expert-params", type=float, help="parameters per uniform expert, e.g. 7e9")
        parser.add_argument("--bytes-per-param", type=float, default=2.0)
        parser.add_argument("--requests", type=int, default=1000)
        parser.add_argument("--policy", default="lru", help=f"cache policy: {', '.join(POLICIES)}")
        parser.add_argument("--batching", default="coe", help=f"batching: {', '.join(BATCHING)}")
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--workload", default="zipf:1.0",
                            help="zipf:S | replay:recent | replay:recent:N | replay:BATCH_ID")
        parser.add_argument("--rate", type=float, default=P.DEFAULT_RATE,
                            help="arrivals per second (0: all at t=0, or recorded times for a replay)")
        parser.add_argument("--output-tokens", type=int, default=128, help="output tokens per replayed request")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args, **o):
        if (o["experts"] is None) != (o["expert_params"] is None):
            raise CommandError("--experts and --expert-params go together (or leave both out for the current map)")
        experts = ({"source": "map"} if o["experts"] is None else
                   {"source": "uniform", "count": o["experts"], "params": o["expert_params"],
                    "bytes_per_param": o["bytes_per_param"]})
        raw = {"machine": {"preset": o["node"]}, "policy": o["policy"], "batching": o["batching"],
               "batch_size": o["batch_size"], "experts": experts, "output_tokens": o["output_tokens"],
               "workload": parse_workload(o["workload"], o["requests"], o["rate"] or None), "seed": o["seed"]}
        t0 = time.perf_counter()
        try:
            params = P.normalise(raw)
            config, workload = P.build(params)
            summary = simulate(config, workload).summary()
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        summary["command_seconds"] = time.perf_counter() - t0
        if o["json"]:
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(P.describe(params))
        for key in SHOWN:
            self.stdout.write(f"  {key:16s} {summary[key]}")
