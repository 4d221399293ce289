import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.engine.evaluation import evaluate
from routing.engine.inputs import InputFormatError, decode, read_labelled, sniff_format
from routing.selectors import active_router
from routing.services import ensure_router

from ._io import read_bytes


class Command(BaseCommand):
    help = ("Evaluate the active router on a labelled JSONL/CSV file ('prompt', 'category'): accuracy, macro-F1, "
            "per-category recall, confusion matrix, fallback rate, and accuracy vs. coverage as the entropy "
            "threshold moves. Nothing is stored.")

    def add_arguments(self, parser):
        parser.add_argument("--input", required=True)
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, input, as_json=False, **options):
        try:
            text = decode(read_bytes(input), Path(input).name)
            prompts, labels = read_labelled(text, "csv" if sniff_format(text, input) == "csv" else "jsonl")
        except InputFormatError as exc:
            raise CommandError(f"{input}: {exc}")
        ensure_router()
        row, router = active_router()
        report = evaluate(router.route(prompts), labels, router.categories, router.fallback)
        report["router_version"] = row.version
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
            return
        w = self.stdout.write
        w(f"Router v{row.version} on {report['n']} prompts: accuracy {report['accuracy']:.3f}, macro-F1 "
          f"{report['macro_f1']:.3f}, fallback rate {report['fallback_rate']:.3f} "
          f"(classifier alone: {report['classifier_accuracy']:.3f})")
        w("Recall per category: " + ", ".join(f"{c} {r:.2f}" for c, r in report["recall"].items()))
        names = report["labels"]
        w("Confusion (rows = truth, columns = routed):")
        w(" " * 12 + " ".join(f"{n[:6]:>6}" for n in names))
        for name, row_counts in zip(names, report["confusion"]):
            if sum(row_counts):
                w(f"{name[:11]:>11} " + " ".join(f"{v:>6}" for v in row_counts))
        w("Accuracy vs. coverage (entropy threshold):")
        for point in report["coverage_curve"]:
            acc = "—" if point["accuracy"] is None else f"{point['accuracy']:.3f}"
            w(f"  ≤{point['entropy_threshold']:.1f}: coverage {point['coverage']:.3f}, accuracy {acc}")
