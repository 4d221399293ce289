"""Writes for routing: train and activate routers, route prompts and store the decisions."""
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from experts.selectors import current_map

from .engine import router as engine
from .models import Category, RouterModel, RoutingDecision
from .selectors import active_router, seed_training_data


class RoutingInputError(ValueError):
    pass


def train_router(prompts=None, labels=None, classifier="auto", user=None, activate=True, progress=None):
    """Train on (prompts, labels) — by default the categories' seed prompts — and store a new RouterModel."""
    if prompts is None:
        prompts, labels = seed_training_data()
    known = set(Category.objects.filter(retired=False).values_list("name", flat=True))
    unknown = sorted(set(labels) - known)
    if unknown:
        raise RoutingInputError(f"unknown categor{'ies' if len(unknown) > 1 else 'y'} in training data: "
                                f"{', '.join(unknown)} (add them as categories first).")
    router = engine.train(prompts, labels, classifier=classifier, embedder_path=settings.COE_EMBEDDER_PATH or None,
                          progress=progress)
    meta = router.meta
    with transaction.atomic():
        version = (RouterModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        if activate:
            RouterModel.objects.filter(is_active=True).update(is_active=False)
        row = RouterModel.objects.create(
            version=version, is_active=activate, embedder_id=meta["embedder_id"], classifier=meta["classifier"],
            params=meta["params"], thresholds=router.thresholds, categories=router.categories,
            training_data_hash=meta["training_data_hash"], training_size=meta["training_size"],
            metrics={"validation": meta["validation"], "candidates": meta["candidates"], "folds": meta["folds"]},
            artifact=router.to_bytes(), created_by=user)
    return row


def ensure_router():
    """Train the default router if none is active (first run on a fresh database)."""
    if not RouterModel.objects.filter(is_active=True).exists():
        train_router()


def check_prompt(prompt):
    if not isinstance(prompt, str):
        raise RoutingInputError("'prompt' must be a string.")
    if not prompt.strip():
        raise RoutingInputError("'prompt' must not be empty.")
    size = len(prompt.encode("utf-8"))
    if size > settings.COE_ROUTE_MAX_BYTES:
        raise RoutingInputError(f"'prompt' is {size} bytes; the limit is {settings.COE_ROUTE_MAX_BYTES} bytes "
                                f"(COE_ROUTE_MAX_BYTES).")
    return prompt


def decision_dict(decision, result):
    """The public shape of a decision (API, `route` command, page)."""
    return {
        "id": decision.pk, "prompt": decision.prompt, "category": decision.category,
        "predicted_category": decision.predicted_category, "confidence": round(decision.confidence, 5),
        "probabilities": decision.probabilities, "entropy": round(decision.entropy, 5),
        "margin": round(decision.margin, 5), "fallback": decision.fallback,
        "fallback_reason": decision.fallback_reason, "expert": result["expert"],
        "map_version": result["map_version"], "router_version": result["router_version"],
        "latency_ms": round(decision.latency_ms, 3),
    }


def route_prompts(prompts, source):
    """Route prompts in one batched call and store one RoutingDecision each (one transaction).

    Returns the public dicts, in input order.
    """
    row, router = active_router()
    snapshot = current_map()
    if snapshot is None:
        raise RoutingInputError("No category→expert map exists yet.")
    results = router.route(prompts)
    decisions, extras = [], []
    for prompt, r in zip(prompts, results):
        expert_name, expert_id = snapshot.expert_for(r.category, router.fallback)
        decisions.append(RoutingDecision(
            source=source, prompt=prompt, category=r.category, predicted_category=r.predicted,
            confidence=r.confidence, probabilities=r.probabilities, entropy=r.entropy, margin=r.margin,
            fallback=r.fallback, fallback_reason=r.fallback_reason, expert_id=expert_id,
            map_version_id=snapshot.version_id, router_id=row.pk, latency_ms=r.latency_ms))
        extras.append({"expert": expert_name, "map_version": snapshot.version, "router_version": row.version})
    with transaction.atomic():
        RoutingDecision.objects.bulk_create(decisions, batch_size=500)
    return [decision_dict(d, e) for d, e in zip(decisions, extras)]
