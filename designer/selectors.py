"""Reads for the designer: tables as engine objects, routed-traffic frequencies, and the design (problem, front,
single experts, hull, oracle) a page or the apply service needs. Nothing here writes."""
import warnings
from dataclasses import dataclass

import numpy as np
from django.db.models import Count

from routing.selectors import decisions

from .engine import CategoryScores, ModelInfo, Problem
from .engine.metrics import oracle_front, upper_hull
from .engine.splits import split_front
from .models import CategoryScore, PromptScore, QualityTable, TableModel

FREQ_SOURCES = ("table", "traffic")
COSTS = ("total", "active")


class DesignError(ValueError):
    """A design that cannot be built or applied; the message says what to change."""


def traffic_counts():
    """Routed prompts per category (after fallback), over all stored routing decisions."""
    rows = decisions().values("category").annotate(n=Count("id")).values_list("category", "n")
    return {c: n for c, n in rows}


def tables():
    return list(QualityTable.objects.select_related("uploaded_by").annotate(n_models=Count("models", distinct=True)))


def table_models(table):
    return list(TableModel.objects.filter(table=table).select_related("expert"))


def _prompt_matrix(table, models):
    """(prompt categories, P x M score matrix with NaN where not judged) for a per-prompt table."""
    col = {m.pk: i for i, m in enumerate(models)}
    rows = PromptScore.objects.filter(prompt__table=table).values_list("prompt_id", "prompt__category", "model_id",
                                                                       "score")
    index, cats, cells = {}, [], []
    for pid, cat, mid, score in rows.iterator():
        if pid not in index:
            index[pid] = len(cats)
            cats.append(cat)
        cells.append((index[pid], col[mid], score))
    matrix = np.full((len(cats), len(models)), np.nan)
    for p, m, s in cells:
        matrix[p, m] = s
    return cats, matrix


def category_scores(table, models):
    """The table as engine CategoryScores: per-prompt tables are averaged per routed category (with counts)."""
    names = [m.name for m in models]
    if table.kind == QualityTable.PER_PROMPT:
        cats, matrix = _prompt_matrix(table, models)
        categories = sorted(set(cats))
        of = np.array([categories.index(c) for c in cats], dtype=int)
        with warnings.catch_warnings():  # a model never judged in a category stays NaN: never chosen there
            warnings.simplefilter("ignore", RuntimeWarning)
            scores = np.array([np.nanmean(matrix[of == c], axis=0) for c in range(len(categories))])
        counts = np.bincount(of, minlength=len(categories)).astype(float)
        return CategoryScores(table.name, categories, names, scores, counts), matrix
    col = {m.pk: i for i, m in enumerate(models)}
    rows = list(CategoryScore.objects.filter(table=table).values_list("category", "model_id", "score"))
    categories = sorted({c for c, _, _ in rows})
    scores = np.full((len(categories), len(models)), np.nan)
    for c, mid, s in rows:
        scores[categories.index(c), col[mid]] = s
    return CategoryScores(table.name, categories, names, scores, None), None


@dataclass
class Design:
    table: QualityTable
    models: list  # TableModel rows, in the problem's expert order
    problem: Problem
    freq_source: str
    cost: str
    prompt_scores: np.ndarray | None  # P x M, per-prompt tables only (for the oracle)
    splits: bool = False  # maps may split one category between two experts (the front's concave envelope)

    def front(self):
        return self.problem.front()

    def split_front(self):
        return split_front(self.problem.quality, self.problem.freq, self.problem.cost)


def design(table, cost="total", freq_source="table", linked_only=False, splits=False):
    """The optimiser's problem for a table: quality per (category, model), frequencies from the table (its
    routed prompts' shares; uniform for a per-category table) or from routed traffic, cost per prompt."""
    if cost not in COSTS:
        raise DesignError(f"cost must be one of {', '.join(COSTS)}, not {cost!r}.")
    if freq_source not in FREQ_SOURCES:
        raise DesignError(f"frequencies must come from one of {', '.join(FREQ_SOURCES)}, not {freq_source!r}.")
    models = table_models(table)
    if linked_only:
        models = [m for m in models if m.expert_id]
        if not models:
            raise DesignError("No model of this table is linked to an expert yet.")
    scores, matrix = category_scores(table, models)
    freq = None
    if freq_source == "traffic":
        counts = traffic_counts()
        freq = {c: float(counts.get(c, 0)) for c in scores.categories}
        if not any(freq.values()):
            raise DesignError("No routed traffic in this table's categories yet: use the table's own frequencies.")
    infos = {m.name: ModelInfo(m.name, m.total_params, m.active_params) for m in models}
    try:
        problem = Problem.from_table(scores, infos, cost=cost, freq=freq)
    except ValueError as exc:
        raise DesignError(str(exc))
    return Design(table, models, problem, freq_source, cost, matrix, bool(splits))


def chart_data(d: Design):
    """JSON-safe data for the heat-map and the Pareto plot: the whole front with each point's map, the single
    experts, their random-mix hull and (per-prompt tables) the per-prompt oracle's front."""
    p = d.problem
    front = d.front()
    # a single expert's point exists only where it was measured in every category
    singles = [None if np.isnan(col).any() else float(p.freq @ col) for col in p.quality.T]
    measured = [i for i, s in enumerate(singles) if s is not None]
    hull = upper_hull(p.cost[measured], np.array([singles[i] for i in measured])) if measured else ([], [])
    oracle = None
    if d.prompt_scores is not None:
        complete = ~np.isnan(d.prompt_scores).any(axis=1)
        if complete.any():
            xs, ys = oracle_front(d.prompt_scores[complete], p.cost)
            oracle = {"costs": xs.tolist(), "scores": ys.tolist(), "prompts": int(complete.sum())}
    quality = [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in p.quality]
    return {
        "table": d.table.name, "scale": d.table.scale, "cost": d.cost, "freq_source": d.freq_source,
        "categories": list(p.categories), "experts": list(p.experts), "freq": p.freq.round(5).tolist(),
        "quality": quality, "expert_cost": p.cost.tolist(),
        "linked": [m.expert.name if m.expert_id else None for m in d.models],
        "front": {"costs": front.costs.tolist(), "qualities": front.qualities.tolist(),
                  "maps": front.choices.tolist()},
        "singles": singles,
        "hull": {"costs": np.asarray(hull[0]).tolist(), "scores": np.asarray(hull[1]).tolist()},
        "oracle": oracle,
        "split_front": _split_front_data(d.split_front()) if d.splits else None,
    }


def _split_front_data(sf):
    """The concave front for the page: its vertices and how to walk it (as splits.SplitFront.at_budget does)."""
    return {"costs": sf.costs.tolist(), "qualities": sf.qualities.tolist(), "start": sf.start.tolist(),
            "steps": sf.steps.tolist()}

