"""Uncertainty scores and the calibration of the fallback thresholds.

A prompt goes to the fallback category (``general``) when the classifier is unsure (normalised entropy above a
threshold, or top-1/top-2 margin below one) or when it is unlike anything the router was trained on (cosine to the
nearest training prompt below a threshold). Thresholds are fitted on out-of-fold predictions so they reflect how
the router behaves on prompts it has not seen.
"""
import numpy as np


def entropy(probs):
    """Entropy of each row, divided by log(n_classes): 0 = certain, 1 = uniform."""
    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / np.log(probs.shape[1])


def margin(probs):
    top2 = -np.sort(-probs, axis=1)[:, :2]
    return top2[:, 0] - top2[:, 1]


def calibrate(probs, y_true, fallback_index, fallback_value=0.5):
    """Pick (entropy, margin) thresholds that maximise the expected value of the routing on held-out data.

    A right expert is worth 1, a wrong one 0, and the fallback ``fallback_value`` (1 when the truth is the fallback
    category itself): with 0.5 a prediction is kept when it is more likely right than wrong. Ties keep more prompts.
    """
    pred = probs.argmax(axis=1)
    correct = (pred == y_true).astype(float)
    fell = np.where(y_true == fallback_index, 1.0, fallback_value)
    ent, mar = entropy(probs), margin(probs)
    best = None
    for t_e in np.unique(np.concatenate([np.quantile(ent, np.linspace(0.5, 1.0, 26)), [1.0]])):
        for t_m in np.linspace(0.0, 0.5, 26):
            accept = (ent <= t_e) & (mar >= t_m)
            value = np.where(accept, correct, fell).sum()
            key = (round(value, 9), accept.sum())
            if best is None or key > best[0]:
                best = (key, float(t_e), float(t_m))
    return {"entropy": best[1], "margin": best[2]}


def ood_threshold(nearest_similarity, quantile=0.01):
    """Similarity below which a prompt counts as out of distribution: a low quantile of held-out nearest sims."""
    return float(np.quantile(nearest_similarity, quantile))
