"""The CoE designer engine: pure Python (numpy, scipy), no Django.

tables     parse quality tables and models files, with line-numbered errors
optimiser  the best category->expert map under average-cost and deployment-size budgets (exact)
frontier   the exact quality-vs-average-cost Pareto front of maps
metrics    random-mix hull of single experts, APGR, RouteLLM's PGR/APGR/CPT
evaluation K-fold held-out evaluation of maps given each prompt's category
shrinkage, splits, subclusters, predicted
           how maps are chosen: shrunk category means, one split category, categories learned per training fold
           (k-means of embeddings or of predicted expert scores)
datasets   loaders for the shared real data sets (tests, bench, docs); embedding_cache keeps their embeddings
"""

from .evaluation import BudgetRow, Evaluation, Point, evaluate, kfold
from .frontier import Front, pareto_front
from .metrics import Grid, RouteLLMMetrics, apgr, hull_at, routellm_metrics, upper_hull
from .optimiser import MapChoice, Problem, best_map, sweep
from .tables import (CategoryScores, ModelInfo, PromptScores, Questions, TableError, check_models,
                     parse_category_scores, parse_models, parse_prompt_scores, parse_questions)

__all__ = [
    "BudgetRow", "CategoryScores", "Evaluation", "Front", "Grid", "MapChoice", "ModelInfo", "Point", "Problem",
    "PromptScores", "Questions", "RouteLLMMetrics", "TableError", "apgr", "best_map", "check_models", "evaluate",
    "hull_at", "kfold", "parse_category_scores", "parse_models", "parse_prompt_scores", "parse_questions",
    "pareto_front", "routellm_metrics", "sweep", "upper_hull",
]
