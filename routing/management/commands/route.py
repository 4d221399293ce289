import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from routing.engine.inputs import InputFormatError, decode, read_prompts, sniff_format
from routing.services import ensure_router, route_prompts

from ._io import read_bytes, write_atomically

CHUNK = 512


class Command(BaseCommand):
    help = ("Route prompts from IN (JSONL with a 'prompt' field, or text with one prompt per line; '-' = stdin) "
            "and write one JSON decision per prompt to OUT, in input order. Blank lines are skipped. "
            "Trains the default router first if none is active.")

    def add_arguments(self, parser):
        parser.add_argument("--input", required=True, help="input file, or - for stdin")
        parser.add_argument("--output", required=True, help="output JSONL file, or - for stdout")
        parser.add_argument("--format", choices=["auto", "jsonl", "text"], default="auto")

    def handle(self, input, output, format="auto", **options):
        name = "stdin" if input == "-" else Path(input).name
        try:
            text = decode(read_bytes(input), name)
            fmt = sniff_format(text, "" if input == "-" else input) if format == "auto" else format
            if fmt == "csv":
                raise InputFormatError(0, "CSV is not accepted here: use JSONL or plain text")
            rows = read_prompts(text, fmt, settings.COE_ROUTE_MAX_BYTES)
        except InputFormatError as exc:
            raise CommandError(f"{name}: {exc}")
        ensure_router()
        prompts = [p for _, p in rows]
        lines = []
        for start in range(0, len(prompts), CHUNK):
            for decision in route_prompts(prompts=prompts[start:start + CHUNK], source="cli"):
                decision.pop("id")
                lines.append(json.dumps(decision, ensure_ascii=False))
        write_atomically(output, "\n".join(lines) + "\n", self.stdout)
        if output != "-":
            self.stderr.write(f"Routed {len(lines)} prompts → {output}")
