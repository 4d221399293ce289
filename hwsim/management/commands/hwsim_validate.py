"""`manage.py hwsim_validate`: the simulator's validation table (published vs simulated figures)."""
import json

from django.core.management.base import BaseCommand, CommandError

from hwsim.services import validation_table


class Command(BaseCommand):
    help = ("Print the validation table: each published figure, the simulated one and the error in %. "
            "Exits non-zero when a target is missed (more than 10 % off, or a bound broken).")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true",
                            help='print a JSON list of {"target", "published", "simulated", "error_pct"}')
        parser.add_argument("--coe", action="store_true", help="also print the CoE latency ratios (no pass mark)")

    def handle(self, *args, **o):
        rows, coe = validation_table()
        keys = ("target", "published", "simulated", "error_pct")
        if o["json"]:
            self.stdout.write(json.dumps([{k: r[k] for k in keys} for r in rows + (coe if o["coe"] else [])]))
        else:
            for r in rows:
                self.stdout.write(f"{'pass' if r['passed'] else 'FAIL'}  {r['target']:52s} {r['check']} "
                                  f"{r['published']:9.2f}  simulated {r['simulated']:9.2f}  error {r['error_pct']:+.2f} %")
            for r in coe if o["coe"] else []:
                self.stdout.write(f"info  {r['target']:52s} {r['published']:.2f}  simulated {r['simulated']:.2f}")
        failed = [r["target"] for r in rows if not r["passed"]]
        if failed:
            raise CommandError(f"{len(failed)} validation target(s) missed: {'; '.join(failed)}")
