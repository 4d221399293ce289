"""Classification metrics for routers: accuracy, macro-F1, recall per category, confusion, coverage curve."""
import numpy as np


def classification_metrics(y_true, y_pred, n_classes):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    valid = y_pred >= 0
    np.add.at(confusion, (y_true[valid], y_pred[valid]), 1)
    support = np.bincount(y_true, minlength=n_classes)
    tp = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros(n_classes), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(n_classes), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n_classes),
                   where=(precision + recall) > 0)
    present = support > 0
    return {"accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "recall": recall, "confusion": confusion}


def evaluate(results, labels, categories, fallback="general", steps=11):
    """Score routing results against gold labels.

    A fallback counts as predicting ``fallback``. The coverage curve re-thresholds normalised entropy: at each
    threshold, coverage is the share of prompts kept and accuracy is measured on the kept ones (using the
    classifier's own prediction).
    """
    names = list(categories)
    for extra in sorted(set(labels) - set(names)):
        names.append(extra)
    index = {c: i for i, c in enumerate(names)}
    y = np.array([index[c] for c in labels])
    routed = np.array([index[r.category] for r in results])
    predicted = np.array([index[r.predicted] for r in results])
    ent = np.array([r.entropy for r in results])
    m = classification_metrics(y, routed, len(names))
    curve = []
    for t in np.linspace(0, 1, steps):
        keep = ent <= t + 1e-12
        curve.append({"entropy_threshold": round(float(t), 3), "coverage": float(keep.mean()),
                      "accuracy": float((predicted[keep] == y[keep]).mean()) if keep.any() else None})
    present = sorted(set(labels))
    return {
        "n": len(labels),
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "classifier_accuracy": float((predicted == y).mean()),
        "fallback_rate": float(np.mean([r.fallback for r in results])),
        "recall": {c: float(m["recall"][index[c]]) for c in present},
        "labels": names,
        "confusion": m["confusion"].tolist(),
        "coverage_curve": curve,
    }
