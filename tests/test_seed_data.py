"""The shipped seed data: enough, varied, and never modelled on the held-out evaluation sets."""
import json
from collections import Counter

import numpy as np

from routing.defaults import seed_examples, taxonomy

from .conftest import shared_data


def test_every_category_has_at_least_40_distinct_prompts():
    counts = Counter(c for _, c in seed_examples())
    assert set(counts) == set(taxonomy()) and set(taxonomy()) >= {
        "writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities", "general"}
    assert min(counts.values()) >= 40
    prompts = [p for p, _ in seed_examples()]
    assert len(set(prompts)) == len(prompts)


def test_no_seed_prompt_is_close_to_mt_bench_or_vicuna_bench():
    from routing.engine.embedder import get_embedder

    held_out = []
    for name in ("mt_bench", "vicuna_bench"):
        with open(shared_data(name, "question.jsonl"), encoding="utf-8") as fh:
            held_out += [turn for line in fh for turn in json.loads(line)["turns"]]
    emb = get_embedder()
    seeds = [p for p, _ in seed_examples()]
    sims = emb.encode(seeds) @ emb.encode(held_out).T
    worst = np.unravel_index(sims.argmax(), sims.shape)
    assert sims.max() < 0.9, f"seed {seeds[worst[0]]!r} ~ held-out {held_out[worst[1]]!r} ({sims.max():.3f})"
