"""The default taxonomy: category descriptions and the shipped seed prompts (written by this project)."""
import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def taxonomy():
    return json.loads((DATA_DIR / "taxonomy.json").read_text())


def seed_prompts(category):
    path = DATA_DIR / "seed" / f"{category}.jsonl"
    return [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def seed_examples():
    """[(prompt, category)] for the whole default taxonomy."""
    return [(p, c) for c in taxonomy() for p in seed_prompts(c)]
