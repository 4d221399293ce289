"""Loaders for the shared real data sets (for tests, bench and docs; the product ships its own data).

The files are read from ../shared/data at run time, never copied into the project. Each benchmark keeps only
prompts judged for every model of its pool. A routed evaluation needs one callable from the router:
`evaluate_benchmark(bench, categories_for)` with `categories_for(prompts) -> list[str]`.

Parameter counts (billions) are the models' published sizes; "active" differs only for mixture-of-experts.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluation import Evaluation, evaluate
from .tables import CategoryScores, ModelInfo, parse_prompt_scores, parse_questions

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

MIXTRAL = ModelInfo("mistralai/Mixtral-8x7B-Instruct-v0.1", 46.7, 12.9)
ARENA_OPEN_POOL = (
    ModelInfo("Llama-2-70b-chat", 69.0, 69.0),
    ModelInfo("vicuna-33b-v1.3", 32.5, 32.5),
    ModelInfo("llama-13b", 13.0, 13.0),
    MIXTRAL,
    ModelInfo("mistralai/Mistral-7B-Instruct-v0.1", 7.24, 7.24),
    ModelInfo("Starling-LM-7B-alpha", 7.24, 7.24),
    ModelInfo("openchat_3.5", 7.24, 7.24),
)
# GPT-4's size is undisclosed: 1000 B is a placeholder. Two-expert results depend only on the share of strong
# calls (average cost is linear in it), so the placeholder changes no reported figure.
MT_BENCH_PAIR = (ModelInfo("gpt-4-1106-preview", 1000.0, 1000.0), MIXTRAL)
# RouteLLM's MMLU and GSM8K files hold each question's correctness (0/1) for this same pair.
ROUTELLM_PAIR = MT_BENCH_PAIR
WILDBENCH_POOL = (
    ModelInfo("gemma-2-9b-it", 9.24, 9.24),
    ModelInfo("gemma-2-27b-it@together", 27.2, 27.2),
    ModelInfo("Meta-Llama-3-70B-Instruct", 70.6, 70.6),
    ModelInfo("Qwen2-72B-Instruct", 72.7, 72.7),
)


@dataclass(frozen=True, eq=False)
class Benchmark:
    """Complete per-prompt scores for a pool: `scores[p, m]` for `prompt_ids[p]`, `models[m]`; `prompts[p]` is
    what a router sees (the first turn); `categories` are the data set's own labels where it has them."""

    name: str
    prompt_ids: list[str]
    prompts: list[str]
    models: tuple[ModelInfo, ...]
    scores: np.ndarray
    categories: list[str] | None
    dropped: int  # prompts left out because some model of the pool was not judged on them


def _dir(data_dir: Path | str | None, name: str) -> Path:
    return Path(data_dir or DATA_DIR) / name


def _benchmark(name: str, folder: Path, scores_file: str, pool: Sequence[ModelInfo], missing: Sequence[str],
               labelled: bool) -> Benchmark:
    table = parse_prompt_scores((folder / scores_file).read_bytes(), scores_file, name=name, missing=missing)
    questions = parse_questions((folder / "question.jsonl").read_bytes(), "question.jsonl")
    ids, scores = table.complete([m.name for m in pool])
    keep = [i for i, pid in enumerate(ids) if pid in questions.prompts]
    ids = [ids[i] for i in keep]
    return Benchmark(name, ids, [questions.prompts[p] for p in ids], tuple(pool), scores[keep],
                     [questions.categories[p] for p in ids] if labelled else None, len(table.prompt_ids) - len(ids))


def load_arena_bench_v1(data_dir: Path | str | None = None, pool: Sequence[ModelInfo] = ARENA_OPEN_POOL) -> Benchmark:
    """300 Chatbot Arena prompts, GPT-4 judge 1-10. No topic labels (the file's category is a constant)."""
    return _benchmark("arena_bench_v1", _dir(data_dir, "arena_bench_v1"), "scores.csv", pool, ("",), False)


def load_mt_bench(data_dir: Path | str | None = None, pool: Sequence[ModelInfo] = MT_BENCH_PAIR) -> Benchmark:
    """80 two-turn questions in 8 categories, RouteLLM's GPT-4 judgments; score = mean of the two turns, as
    MT-Bench averages; -1 marks an unparsable judgment."""
    return _benchmark("mt_bench", _dir(data_dir, "mt_bench"), "scores_by_question.csv", pool, ("", "-1"), True)


def _correctness(name: str, files: Sequence[Path], pool: Sequence[ModelInfo], label) -> Benchmark:
    """RouteLLM's correctness CSVs (columns `prompt` and one True/False column per model): score 1 = correct."""
    ids, prompts, rows, labels = [], [], [], []
    for path in files:
        with path.open(newline="", encoding="utf-8") as fh:
            for i, record in enumerate(csv.DictReader(fh)):
                ids.append(f"{label(path)}/{i}")
                prompts.append(record["prompt"])
                rows.append([{"True": 1.0, "False": 0.0}[record[m.name]] for m in pool])
                labels.append(label(path))
    return Benchmark(name, ids, prompts, tuple(pool), np.array(rows), labels if len(set(labels)) > 1 else None, 0)


def load_mmlu(data_dir: Path | str | None = None, pool: Sequence[ModelInfo] = ROUTELLM_PAIR) -> Benchmark:
    """MMLU's 14,042 test questions (57 subjects, the categories) with RouteLLM's per-question correctness of
    GPT-4-1106 and Mixtral-8x7B. All are kept: RouteLLM's `contaminated_prompts.jsonl` lists overlaps with *its*
    router's training data, and our maps are fitted on MMLU itself inside the folds."""
    files = sorted((_dir(data_dir, "routellm_mmlu") / "responses").glob("mmlu_*.csv"))
    if not files:
        raise FileNotFoundError(f"no mmlu_*.csv under {_dir(data_dir, 'routellm_mmlu') / 'responses'}")
    return _correctness("mmlu", files, pool, lambda path: path.stem.removeprefix("mmlu_"))


def load_gsm8k(data_dir: Path | str | None = None, pool: Sequence[ModelInfo] = ROUTELLM_PAIR) -> Benchmark:
    """GSM8K's 1,319 test problems (one kind: grade-school maths word problems, no categories) with RouteLLM's
    per-problem correctness of GPT-4-1106 and Mixtral-8x7B; all kept, as for MMLU."""
    return _correctness("gsm8k", [_dir(data_dir, "routellm_gsm8k") / "gsm8k_responses.csv"], pool,
                        lambda path: "gsm8k")


def load_wildbench(data_dir: Path | str | None = None,
                   pool: Sequence[ModelInfo] = WILDBENCH_POOL) -> tuple[CategoryScores, dict[str, ModelInfo]]:
    """WB-Score (adjusted, -10..10) per task category; no counts: WildBench's own macro score weighs the five
    categories equally, and so does a table without counts."""
    stats = json.loads((_dir(data_dir, "wildbench") / "score.json").read_text(encoding="utf-8"))
    names = list(stats[pool[0].name]["task_categorized_scores"])
    scores = np.array([[stats[m.name]["task_categorized_scores"][c] for m in pool] for c in names])
    return CategoryScores("wildbench", names, [m.name for m in pool], scores), {m.name: m for m in pool}


def evaluate_benchmark(bench: Benchmark, categories_for: Callable[[list[str]], list[str]], **kwargs) -> Evaluation:
    """Held-out evaluation of `bench` with the categories a router gives its prompts; `kwargs` go to
    evaluation.evaluate (cost= is required)."""
    return evaluate(bench.scores, list(categories_for(bench.prompts)), bench.models, **kwargs)
