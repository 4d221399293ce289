import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.engine.classifiers import CLASSIFIERS
from routing.engine.inputs import InputFormatError, decode, read_labelled, sniff_format
from routing.services import RoutingInputError, train_router

from ._io import read_bytes


class Command(BaseCommand):
    help = ("Train a router (from the categories' seed prompts, or a labelled JSONL/CSV with 'prompt' and "
            "'category'), store it as the new active RouterModel and print its validation metrics.")

    def add_arguments(self, parser):
        parser.add_argument("--data", help="labelled JSONL or CSV file (default: the categories' seed prompts)")
        parser.add_argument("--classifier", default="auto", choices=["auto", *sorted(CLASSIFIERS)])
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the metrics as JSON")

    def handle(self, data=None, classifier="auto", as_json=False, **options):
        prompts = labels = None
        if data:
            try:
                text = decode(read_bytes(data), Path(data).name)
                prompts, labels = read_labelled(text, "csv" if sniff_format(text, data) == "csv" else "jsonl")
            except InputFormatError as exc:
                raise CommandError(f"{data}: {exc}")
        progress = None if as_json else (lambda row: self.stderr.write(
            f"  {row['classifier']:9} {row['params']}: cv accuracy {row['cv_accuracy']:.3f}, "
            f"macro-F1 {row['cv_macro_f1']:.3f}"))
        try:
            row = train_router(prompts=prompts, labels=labels, classifier=classifier, progress=progress)
        except (RoutingInputError, ValueError) as exc:
            raise CommandError(str(exc))
        summary = {"router_version": row.version, "classifier": row.classifier, "params": row.params,
                   "training_size": row.training_size, "thresholds": row.thresholds, **row.metrics["validation"]}
        if as_json:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            v = row.metrics["validation"]
            self.stdout.write(f"Router v{row.version} active: {row.classifier} {row.params} on {row.training_size} "
                              f"prompts. Cross-validated accuracy {v['accuracy']:.3f}, macro-F1 {v['macro_f1']:.3f}; "
                              f"with fallback: accuracy {v['routed_accuracy']:.3f}, fallback rate "
                              f"{v['fallback_rate']:.3f}.")

