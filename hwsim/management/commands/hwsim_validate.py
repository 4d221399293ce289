"""`manage.py hwsim_validate`: the simulator's validation table (published vs simulated figures, with their basis)."""
import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hwsim.engine import markdown_sensitivity, markdown_table, sensitivity
from hwsim.services import validation_table

KEYS = ("target", "published", "simulated", "error_pct", "check", "tolerance_pct", "passed", "basis", "source")
DOC = Path(settings.BASE_DIR) / "docs" / "HWSIM.md"
BLOCKS = ("validation-table", "sensitivity")  # generated parts of the doc, between <!-- NAME:start/end --> markers


def replace_block(text: str, name: str, content: str) -> str:
    """`text` with the part between the `name` markers replaced by `content`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise CommandError(f"the doc has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{content}{end}{rest.split(end, 1)[1]}"


def generated_blocks(rows) -> dict:
    return {"validation-table": markdown_table(rows), "sensitivity": markdown_sensitivity(sensitivity())}


class Command(BaseCommand):
    help = ("Print the validation table: each published figure, the simulated one, the error in %, and the row's "
            "basis (calibration, derived or independent) and source.  Exits non-zero when a row is missed.")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help=f"print a JSON list of {{{', '.join(KEYS)}}}")
        parser.add_argument("--coe", action="store_true",
                            help="also give where the time goes in the CoE scenario behind the ratio rows")
        parser.add_argument("--markdown", action="store_true", help="print the table as docs/HWSIM.md embeds it")
        parser.add_argument("--sensitivity", action="store_true",
                            help="print how the headline CoE ratios move when one modelling choice changes")
        parser.add_argument("--update-doc", action="store_true",
                            help=f"rewrite the generated tables in {DOC.name} (between their markers) and exit 0")

    def handle(self, *args, **o):
        rows, coe = validation_table()
        if o["update_doc"]:
            text = DOC.read_text(encoding="utf-8")
            for name, content in generated_blocks(rows).items():
                text = replace_block(text, name, content)
            DOC.write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {', '.join(BLOCKS)} into {DOC}")
            return
        if o["sensitivity"]:
            self.stdout.write(markdown_sensitivity(sensitivity()))
            return
        if o["json"]:
            data = [{k: r[k] for k in KEYS} for r in rows]
            self.stdout.write(json.dumps({"rows": data, "coe": coe} if o["coe"] else data))
        elif o["markdown"]:
            self.stdout.write(markdown_table(rows))
        else:
            for r in rows:
                self.stdout.write(f"{'pass' if r['passed'] else 'MISS'}  {r['basis']:11s} {r['target']:70s} "
                                  f"{r['check']} {r['published']:9.3g}  simulated {r['simulated']:9.3g}  "
                                  f"error {r['error_pct']:+7.2f} %  ({r['source']})")
            for c in coe if o["coe"] else []:
                self.stdout.write(f"info  {c['machine']:9s} batch {c['batch_ms']:7.1f} ms, hit rate "
                                  f"{c['hbm_hit_rate']:.2f}; per pair: route {c['route_ms']:.1f}, switch "
                                  f"{c['switch_ms']:.1f}, prefill {c['prefill_ms']:.1f}, "
                                  f"decode {c['decode_ms']:.1f} ms")
        missed = [r["target"] for r in rows if not r["passed"]]
        if missed:
            raise CommandError(f"{len(missed)} of {len(rows)} validation rows missed: {'; '.join(missed)}")
