"""Category quality from per-prompt scores, optionally shrunk toward each expert's overall mean (empirical Bayes).

Why: a category of ten prompts with single 1-10 judgments (a model's per-prompt spread is ~3 points) has a mean
whose error is as large as the gaps between experts, so the plain mean often picks the wrong expert for small
categories. Shrinking q[c, e] = (n_c * mean[c, e] + m * mean[e]) / (n_c + m) trusts a category's own mean in
proportion to its size; m = 0 is the plain mean. How strong m should be depends on the data, so
evaluation.evaluate chooses it from STRENGTHS by an inner cross-validation on training prompts only.
"""

from __future__ import annotations

import numpy as np

STRENGTHS = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0)  # candidate m, fixed before any result was seen


def category_quality(scores: np.ndarray, cat_of: np.ndarray, categories: np.ndarray,
                     strength: float = 0.0) -> np.ndarray:
    """Quality of each of `categories` (indices into `cat_of`'s values, each with at least one prompt) for each
    expert: the mean of its prompts' scores, shrunk with strength `strength` toward the mean over all prompts."""
    quality = np.array([scores[cat_of == c].mean(axis=0) for c in categories])
    if strength:
        n = np.array([np.count_nonzero(cat_of == c) for c in categories], dtype=float)[:, None]
        quality = (n * quality + strength * scores.mean(axis=0)) / (n + strength)
    return quality
