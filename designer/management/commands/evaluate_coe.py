import argparse
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from designer.engine import TableError, evaluate, parse_models, parse_prompt_scores, parse_questions
from designer.engine.datasets import load_arena_bench_v1, load_gsm8k, load_mmlu, load_mt_bench
from designer.engine.embedding_cache import cached_encode
from designer.engine.predicted import ScorePredictor, lexical_counts
from designer.engine.shrinkage import STRENGTHS
from designer.engine.splits import stable_keys
from designer.engine.subclusters import FINE_KS, KS, PREDICTED, PREDICTED_KS, SUB_KS, ClusterCategoriser
from routing.engine.onnx_model import cache_dir
from routing.selectors import active_router
from routing.services import ensure_router

DATASETS = {"arena_bench_v1": load_arena_bench_v1, "mt_bench": load_mt_bench, "mmlu": load_mmlu, "gsm8k": load_gsm8k}
# --categories other than 'router': ClusterCategoriser's candidate k-means k, router sub-cluster k and k-means k on
# predicted scores
CLUSTERS = {"auto": (KS, (), PREDICTED_KS), "clusters": (KS, (), ()), "fine-clusters": (FINE_KS, (), ()),
            "sub-clusters": (KS, SUB_KS, ())}


def _read(path):
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}")


def _parse(parser, path):
    try:
        return parser(_read(path), Path(path).name)
    except TableError as exc:
        raise CommandError(f"{path}:\n" + "\n".join(f"  {e}" for e in exc.errors))


def load_files(scores_path, questions_path, models_path):
    """(prompts, P x M scores, ModelInfo pool, prompts dropped): the pool is the models file, in its order; only
    prompts judged for every pool model and present in the questions file are kept."""
    infos = _parse(parse_models, models_path)
    table = _parse(parse_prompt_scores, scores_path)
    questions = _parse(parse_questions, questions_path)
    if len(infos) < 2:
        raise CommandError(f"{models_path}: need at least two models to compare")
    pool = list(infos.values())
    try:
        ids, scores = table.complete([m.name for m in pool])
    except TableError as exc:
        raise CommandError(f"{scores_path}: " + "; ".join(exc.errors) + f" (every model in {models_path} must be "
                           "scored)")
    keep = [i for i, p in enumerate(ids) if p in questions.prompts]
    if len(keep) < 2:
        raise CommandError(f"{scores_path}: only {len(keep)} prompt(s) are judged for every model and present in "
                           f"{questions_path}; need at least as many as folds")
    return [questions.prompts[ids[i]] for i in keep], scores[keep], pool, len(table.prompt_ids) - len(keep)


class Command(BaseCommand):
    help = ("Held-out evaluation of CoE maps on real judgments: route the questions with the active router, choose "
            "maps on training folds, score them on held-out folds; report CoE per budget, single experts, their "
            "random-mix hull, the per-prompt oracle, APGR and (two experts) RouteLLM's PGR/APGR/CPT(50%).")

    def add_arguments(self, parser):
        parser.add_argument("--scores", help="per-prompt scores, CSV or JSONL: prompt_id, model, score")
        parser.add_argument("--questions", help="prompts, CSV or JSONL: prompt_id (or question_id), prompt (or turns)")
        parser.add_argument("--models", help="models file: model, total_params[, active_params] (the pool)")
        parser.add_argument("--dataset", choices=sorted(DATASETS),
                            help="a shared data set instead of the three files (read from ../shared/data)")
        parser.add_argument("--data", help="shared data folder for --dataset (default: ../shared/data)")
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--cost", choices=["total", "active"], default="total")
        parser.add_argument("--budgets", type=int, default=50, help="budget grid size (default 50)")
        parser.add_argument("--categories", choices=["router", *CLUSTERS], default="auto",
                            help="auto (default): per training fold, the router's categories, k-means clusters "
                                 f"(k in {KS}) of the prompts' embeddings or k-means clusters (k in {PREDICTED_KS}) of "
                                 "each expert's score as predicted from the prompt, whichever an inner "
                                 "cross-validation on the training prompts prefers; router: the active router's "
                                 "categories; clusters: auto without predicted scores; fine-clusters: clusters with "
                                 f"k in {FINE_KS}; sub-clusters: clusters, or each router category cut into k "
                                 f"sub-clusters (k in {SUB_KS})")
        parser.add_argument("--inner-repeats", type=int, default=1,
                            help="clusters: average the inner cross-validation over this many fold cuts")
        parser.add_argument("--shrinkage", choices=["none", "auto"], default="auto",
                            help="auto (default): shrink each category's mean score toward the expert's overall mean, "
                                 f"strength chosen from {STRENGTHS} per training fold by an inner cross-validation")
        parser.add_argument("--splits", action=argparse.BooleanOptionalAction, default=True,
                            help="maps may split one category between two experts, by a stable hash of the prompt "
                                 "text (the upper concave envelope of the map front); on by default")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, scores=None, questions=None, models=None, dataset=None, data=None, folds=5, seed=0,
               cost="total", budgets=50, categories="auto", shrinkage="auto", splits=True, inner_repeats=1,
               as_json=False, **options):
        files = (scores, questions, models)
        if dataset and any(files):
            raise CommandError("give either --dataset or --scores/--questions/--models, not both")
        if dataset:
            try:
                bench = DATASETS[dataset](data)
            except OSError as exc:
                raise CommandError(f"cannot read data set {dataset}: {exc}")
            prompts, matrix, pool, dropped, source = (bench.prompts, bench.scores, list(bench.models), bench.dropped,
                                                      dataset)
        elif all(files):
            prompts, matrix, pool, dropped = load_files(*files)
            source = str(scores)
        else:
            raise CommandError("need --scores, --questions and --models (or --dataset)")
        if budgets < 2:
            raise CommandError("--budgets must be at least 2")
        if inner_repeats < 1:
            raise CommandError("--inner-repeats must be at least 1")
        ensure_router()
        row, router = active_router()
        embedder = router.embedder
        embeddings = cached_encode(embedder.encode, embedder.model_id, prompts, cache_dir() / "embeddings")
        routed = [r.category for r in router.route(prompts, embeddings=embeddings)]
        method = {"shrinkage": STRENGTHS if shrinkage == "auto" else 0.0, "splits": splits,
                  "keys": stable_keys(prompts) if splits else None}
        categoriser = routed
        if categories != "router":
            ks, sub_ks, predicted_ks = CLUSTERS[categories]
            predictor = ScorePredictor(embeddings, lexical_counts(prompts), matrix, seed=seed) if predicted_ks else None
            categoriser = ClusterCategoriser(embeddings, matrix, pool, cost=cost, base=routed, ks=ks, sub_ks=sub_ks,
                                             predictor=predictor, predicted_ks=predicted_ks,
                                             inner_repeats=inner_repeats, seed=seed, **method)
        try:
            ev = evaluate(matrix, categoriser, pool, cost=cost, folds=folds, seed=seed, n_budgets=budgets, **method)
        except ValueError as exc:
            raise CommandError(str(exc))
        counts = {c: routed.count(c) for c in sorted(set(routed))}
        report = {"source": source, "router_version": row.version, "dropped_prompts": dropped, "categories": categories,
                  "category_counts": counts, **ev.to_dict()}
        if categories != "router":
            report["chosen_per_fold"] = categoriser.chosen
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._print(report)

    def _print(self, r):
        w = self.stdout.write
        w(f"{r['source']}: {r['n_prompts']} prompts ({r['dropped_prompts']} dropped), router v{r['router_version']}, "
          f"{r['n_categories']} categories, {r['folds']}-fold held out, seed {r['seed']}, cost = {r['cost']} params")
        w("Router categories: " + ", ".join(f"{c} {n}" for c, n in r["category_counts"].items()))
        if "chosen_per_fold" in r:
            w("Categories per fold (chosen on its training prompts): "
              + ", ".join(_candidate(f["chosen"]) for f in r["chosen_per_fold"]))
        if r["splits"]:
            w("Maps may split one category between two experts (by a stable hash of the prompt text)")
        if "inner_apgr" in r["shrinkage"][0]:
            w("Shrinkage strength per fold (chosen on its training prompts): "
              + ", ".join(f"{f['strength']:g}" for f in r["shrinkage"]))
        for p in r["experts"]:
            w(f"  expert {p['name']}: score {p['score']:.3f} at {p['avg_total_params']:g} B total / "
              f"{p['avg_active_params']:g} B active")
        o = r["oracle"]
        w(f"  per-prompt oracle: {o['score']:.3f} at {o['avg_total_params']:.1f} B total / "
          f"{o['avg_active_params']:.1f} B active on average")
        w(f"{'budget':>8} {'CoE(b)':>7} {'held-out':>8} {'total B':>8} {'active B':>8} {'hull':>6} {'oracle':>6}")
        for b in r["rows"]:
            w(f"{b['budget']:8.1f} {b['coe']:7.3f} {b['score']:8.3f} {b['avg_total_params']:8.1f} "
              f"{b['avg_active_params']:8.1f} {b['hull']:6.3f} {b['oracle']:6.3f}")
        w(f"APGR {r['apgr']:.3f} (each budget's own map: {r['apgr_direct']:.3f}; random-mix hull "
          f"{r['hull_apgr']:.3f}); budgets below the hull: {r['below_hull']} of {len(r['rows'])}")
        if r["routellm"]:
            cpt = r["routellm"]["cpt50"]
            w(f"RouteLLM: APGR {r['routellm']['apgr']:.3f}, CPT(50%) "
              f"{'not reached' if cpt is None else f'{cpt:.1f}% strong calls'}")


def _candidate(name: str) -> str:
    if name.startswith(PREDICTED):
        return f"k-means {name.removeprefix(PREDICTED)} on predicted scores"
    return name if name.startswith("router") else f"k-means {name}"
