"""Replay the seed prompts (or a batch's) at a steady rate so the live dashboard moves during a demo."""
import threading

from django.core.management.base import BaseCommand, CommandError

from routing.services import RoutingInputError, demo_prompts, run_demo_traffic


class Command(BaseCommand):
    help = "Route seed prompts (or a batch's prompts) at --rate prompts/s until Ctrl-C or --duration seconds."

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=20.0, help="prompts per second (default 20)")
        parser.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
        parser.add_argument("--batch", type=int, default=None, help="replay this batch's prompts instead")

    def handle(self, *args, rate, duration, batch, **options):
        stop = threading.Event()
        try:
            prompts = demo_prompts(batch)
            self.stderr.write(f"Routing {len(prompts)} prompts round-robin at {rate:g}/s …")
            sent = run_demo_traffic(rate=rate, prompts=prompts, stop=stop, duration=duration)
        except RoutingInputError as exc:
            raise CommandError(str(exc))
        except KeyboardInterrupt:
            stop.set()
            sent = None
        self.stdout.write(f"routed {sent} prompts" if sent is not None else "stopped")
