"""Prompt embeddings cached on disk, keyed by a hash of each text, one file per embedder.

Why: evaluating the designer on MMLU embeds 14,042 questions, several minutes on two shared cores, and every run
(seed, option) needs the same vectors. Only SHA-256 digests of the texts and their vectors are stored, never the
texts, and the cache lives outside the repository (the caller passes its folder).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def _digests(texts: Sequence[str]) -> np.ndarray:
    return np.array([hashlib.sha256(t.encode("utf-8")).digest() for t in texts], dtype="S32")


def cache_file(directory: Path | str, model_id: str) -> Path:
    """Where `model_id`'s vectors are kept (the id names the model and runtime, so a new runtime starts afresh)."""
    return Path(directory) / f"{re.sub(r'[^A-Za-z0-9_.+-]', '_', model_id)}.npz"


def cached_encode(encode: Callable[[list[str]], np.ndarray], model_id: str, texts: Sequence[str],
                  directory: Path | str) -> np.ndarray:
    """`encode(texts)` for every text, embedding only those not cached yet (each distinct text once) and adding
    them to the cache; rows in input order."""
    path = cache_file(directory, model_id)
    keys = _digests(texts)
    known_keys, known = np.empty(0, dtype="S32"), None
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            known_keys, known = z["keys"], z["vectors"]
    index = {k: i for i, k in enumerate(known_keys.tolist())}
    missing = list(dict.fromkeys(k for k in keys.tolist() if k not in index))
    if missing:
        first = {k: i for i, k in reversed(list(enumerate(keys.tolist())))}
        fresh = np.asarray(encode([texts[first[k]] for k in missing]), dtype=np.float32)
        known = fresh if known is None else np.concatenate([known, fresh])
        known_keys = np.concatenate([known_keys, np.array(missing, dtype="S32")])
        index.update({k: len(known_keys) - len(missing) + i for i, k in enumerate(missing)})
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, keys=known_keys, vectors=known)
        os.replace(tmp.name, path)  # readers see the old file or the new one, never half of one
    return known[[index[k] for k in keys.tolist()]]
