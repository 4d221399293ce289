"""Write a shared data set as the designer's three input files, into a folder you name (e.g. under /tmp):
python -m designer.engine.export arena_bench_v1|mt_bench|wildbench OUT_DIR [--data DIR]

Why: `evaluate_coe` and the import page take plain files; the shared data sets' text must never be copied into
the repository, so these go to a scratch folder. Per-prompt sets give scores.csv (prompt_id, prompt, model,
score: the pool's complete judgments), questions.jsonl and models.csv; wildbench gives categories.csv
(category, model, score) and models.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from .datasets import load_arena_bench_v1, load_mt_bench, load_wildbench

LOADERS = {"arena_bench_v1": load_arena_bench_v1, "mt_bench": load_mt_bench}


def _write_models(path: Path, models) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["model", "total_params", "active_params"])
        out.writerows([m.name, f"{m.total_params:g}", f"{m.active_params:g}"] for m in models)


def export(name: str, out_dir: Path | str, data_dir: Path | str | None = None) -> list[Path]:
    """Write the files for data set `name` into `out_dir` (created if missing); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if name == "wildbench":
        table, models = load_wildbench(data_dir)
        with (out / "categories.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["category", "model", "score"])
            w.writerows([c, m, f"{table.scores[i, j]:g}"] for i, c in enumerate(table.categories)
                        for j, m in enumerate(table.models))
        _write_models(out / "models.csv", models.values())
        return [out / "categories.csv", out / "models.csv"]
    bench = LOADERS[name](data_dir)
    with (out / "scores.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt_id", "prompt", "model", "score"])
        w.writerows([pid, text, m.name, f"{bench.scores[p, j]:g}"]
                    for p, (pid, text) in enumerate(zip(bench.prompt_ids, bench.prompts))
                    for j, m in enumerate(bench.models))
    with (out / "questions.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"prompt_id": pid, "prompt": text}) + "\n"
                      for pid, text in zip(bench.prompt_ids, bench.prompts))
    _write_models(out / "models.csv", bench.models)
    return [out / "scores.csv", out / "questions.jsonl", out / "models.csv"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=[*LOADERS, "wildbench"])
    parser.add_argument("out_dir")
    parser.add_argument("--data", help="shared data folder (default: ../shared/data beside the repository)")
    args = parser.parse_args()
    for path in export(args.dataset, args.out_dir, args.data):
        print(path)


if __name__ == "__main__":
    main()
