"""Router benchmark: accuracy on held-out MT-Bench / Vicuna bench, speed, and aurelio's semantic-router side by side.

Our router is trained on the shipped seed data only (MT-Bench and Vicuna bench are never trained on). Run:

    .venv/bin/python bench/bench_router.py                 # ours + plain sentence-transformers baseline
    bash bench/setup_bench_env.sh && .venv-bench/bin/python bench/bench_router.py   # + semantic-router

A fallback to ``general`` counts as a miss on MT-Bench (which has no such category). Every system is timed the same
way: batch throughput is the median of RUNS timed passes over the same 2,000 short prompts after one warm-up call,
single-prompt latency the median and p95 of the same 200 one-prompt calls after 20 warm-up calls.
"""
import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from routing.defaults import seed_examples  # noqa: E402
from routing.engine import train  # noqa: E402
from routing.engine.embedder import default_model_path, get_embedder  # noqa: E402
from routing.engine.evaluation import evaluate  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
# Vicuna bench's categories → ours; a prompt counts as right when routed to any of the listed categories.
VICUNA_MAP = {
    "generic": {"general"}, "knowledge": {"stem", "humanities"}, "roleplay": {"roleplay"},
    "common-sense": {"reasoning", "general"}, "fermi": {"reasoning", "math"},
    "counterfactual": {"humanities", "reasoning"}, "coding": {"coding"}, "math": {"math"}, "writing": {"writing"},
}


def load_questions(name):
    with open(DATA / name / "question.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return [r["turns"][0] for r in rows], [r["category"] for r in rows]


def short_prompts(n=2000):
    """Short prompts (≤ 16 words) cut from the seed data's first sentences, cycled to ``n``."""
    base = [" ".join(p.split()[:16]) for p, _ in seed_examples()]
    return [f"{base[i % len(base)]} ({i})" for i in range(n)]


RUNS = 3  # timed batch passes per system: the same for every system compared


def timings(fn, prompts):
    """prompts/s of each of RUNS timed passes (after a warm-up call), and their median."""
    fn(prompts[:64])  # warm-up
    rates = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn(prompts)
        rates.append(round(len(prompts) / (time.perf_counter() - start), 1))
    return {"batch_prompts_per_s": statistics.median(rates), "batch_runs_prompts_per_s": rates}


def single_latency(fn, prompts, n=200):
    gc.collect()  # start from a clean heap: training leaves garbage whose collection would land in the samples
    for p in prompts[:20]:
        fn(p)
    samples = []
    for p in prompts[:n]:
        start = time.perf_counter()
        fn(p)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * len(samples)) - 1]


def ours(classifier, runtime):
    prompts, labels = map(list, zip(*seed_examples()))
    get_embedder(None, runtime)  # exported/loaded before the clock starts
    start = time.perf_counter()
    router = train(prompts, labels, classifier=classifier, runtime=runtime)
    train_s = time.perf_counter() - start
    out = {"system": f"ours ({router.meta['classifier']} {router.meta['params']}, embedder {runtime})",
           "train_s": round(train_s, 1),
           "cv_accuracy": round(router.meta["validation"]["accuracy"], 3)}
    mt_p, mt_y = load_questions("mt_bench")
    report = evaluate(router.route(mt_p), mt_y, router.categories)
    out.update(mt_bench_accuracy=report["accuracy"], mt_bench_classifier_accuracy=report["classifier_accuracy"],
               mt_bench_fallback_rate=report["fallback_rate"], mt_bench_recall=report["recall"])
    v_p, v_y = load_questions("vicuna_bench")
    routed = router.route(v_p)
    out["vicuna_accuracy_mapped"] = sum(r.category in VICUNA_MAP[y] for r, y in zip(routed, v_y)) / len(v_y)
    short = short_prompts()
    out.update(timings(router.route, short))
    p50, p95 = single_latency(lambda p: router.route([p]), short)
    out.update(single_p50_ms=round(p50, 2), single_p95_ms=round(p95, 2))
    return out


def plain_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(default_model_path(), device="cpu")
    short = short_prompts()
    return {"system": "plain sentence-transformers encode (batch 32, no classifier)",
            **timings(lambda ps: model.encode(ps, batch_size=32), short)}


def semantic_router():
    try:
        from semantic_router import Route
        from semantic_router.encoders import HuggingFaceEncoder
        from semantic_router.routers import IndexedRouter
    except ImportError:
        return {"system": "semantic-router", "skipped": "not installed: bash bench/setup_bench_env.sh, then run "
                                                        "this script with .venv-bench/bin/python"}
    import semantic_router as sr

    by_category = {}
    for prompt, category in seed_examples():
        by_category.setdefault(category, []).append(prompt)
    encoder = HuggingFaceEncoder(name=default_model_path(), device="cpu")
    start = time.perf_counter()
    router = IndexedRouter(encoder=encoder, routes=[Route(name=c, utterances=u) for c, u in by_category.items()])
    build_s = time.perf_counter() - start
    mt_p, mt_y = load_questions("mt_bench")
    short = short_prompts()
    p50, p95 = single_latency(lambda p: router(p), short)
    return {"system": f"semantic-router {sr.__version__} (IndexedRouter, same MiniLM model, seed prompts as routes)",
            "train_s": round(build_s, 1), "mt_bench_accuracy": router.evaluate(mt_p, mt_y),
            **timings(lambda ps: router.evaluate(ps, [None] * len(ps)), short),
            "single_p50_ms": round(p50, 2), "single_p95_ms": round(p95, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default="auto")
    parser.add_argument("--runtimes", default="onnx-int8,onnx,torch",
                        help="embedder runtimes to train and measure ours with, comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch

    rows = [ours(args.classifier, r) for r in args.runtimes.split(",")]
    rows += [plain_sentence_transformers(), semantic_router()]
    if args.json:
        print(json.dumps({"torch_threads": torch.get_num_threads(), "results": rows}, indent=2))
        return
    print(f"torch threads: {torch.get_num_threads()}")
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
