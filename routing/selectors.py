"""Reads: the active router (cached per process by version), categories, training data, batches, dashboard."""
import threading

from django.db.models import Count, F, Max, Subquery
from django.db.models.expressions import Col

from access.roles import owned_by
from experts.selectors import MapSnapshot, active_categories, expert_pool, map_versions
from hwsim.engine import ConfigError, ExpertSpec, switches_for

from .engine.router import Router
from .models import Batch, BatchChunk, RouterModel, RoutingDecision

_cache = {"version": None, "router": None, "row": None}
_lock = threading.Lock()


class NoActiveRouter(LookupError):
    pass


def active_router(head=None):
    """(RouterModel row without the artifact, engine Router). One indexed query when the version is unchanged, none
    when the caller passes the ``head`` it has just read (serving_heads)."""
    from django.conf import settings

    if head is None:
        head = RouterModel.objects.filter(is_active=True).values_list(*_HEAD).first()
    if head is None:
        raise NoActiveRouter("No active router: run `python manage.py train_router`.")
    if _cache["version"] != head:
        with _lock:
            row = RouterModel.objects.get(pk=head[0])
            router = Router.from_bytes(row.artifact, settings.COE_EMBEDDER_PATH or None)
            router.embedder  # load the embedding model now, not inside the first timed request
            _cache.update(version=head, row=row, router=router)
    return _cache["row"], _cache["router"]


_HEAD = ("pk", "version", "created_at")
_HEADS_SQL = {}  # database vendor → the compiled query: building it with the ORM cost 3x the round trip


def serving_heads():
    """(the active router's head, the newest map version's (number, pk) or None) in ONE indexed query: the version
    check a routed chat makes on every call, for active_router(head) and current_map(head). NoActiveRouter if none."""
    from django.db import connection

    sql = _HEADS_SQL.get(connection.vendor)
    if sql is None:
        newest = map_versions()
        query = (RouterModel.objects.filter(is_active=True).order_by("-version")
                 .annotate(map_number=Subquery(newest.values("number")[:1]), map_pk=Subquery(newest.values("pk")[:1]))
                 .values_list(*_HEAD, "map_number", "map_pk")[:1]).query
        sql = _HEADS_SQL[connection.vendor] = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(*sql)
        row = cursor.fetchone()
    if row is None:
        raise NoActiveRouter("No active router: run `python manage.py train_router`.")
    created = Col(RouterModel._meta.db_table, RouterModel._meta.get_field("created_at"))
    created_at = row[2]
    for convert in connection.ops.get_db_converters(created) + created.get_db_converters(connection):
        created_at = convert(created_at, created, connection)  # as values_list gives it: active_router compares
    return (row[0], row[1], created_at), (row[3:] if row[3] is not None else None)


def active_router_row():
    return RouterModel.objects.filter(is_active=True).defer("artifact").first()


def seed_training_data():
    """(prompts, labels) from the seed prompts of every active category."""
    prompts, labels = [], []
    for category in active_categories():
        for prompt in category.seed_prompts:
            prompts.append(prompt)
            labels.append(category.name)
    return prompts, labels


# --- Batches and the live dashboard --------------------------------------------------------------------------------

def decisions():
    """Every routing decision as a queryset, for other apps to narrow or aggregate (metrics, simulator, designer)."""
    return RoutingDecision.objects.all()


def decisions_since(since):
    """Decisions routed at or after ``since`` (a queryset)."""
    return RoutingDecision.objects.filter(created_at__gte=since)


def recent_decisions(n):
    """The newest ``n`` decisions with their expert, newest first."""
    return RoutingDecision.objects.select_related("expert").order_by("-id")[:n]


BATCH_STATUSES = Batch.STATUSES


def batches():
    """Every batch as a queryset, for other apps to aggregate (metrics)."""
    return Batch.objects.all()


def open_batches():
    """Batches not finished yet (queued or running), a queryset."""
    return Batch.objects.filter(status__in=("queued", "running"))


def batch_progress(batch):
    """A batch's progress as the dashboard shows it; ``user`` (its uploader) decides who may read its name."""
    return {"id": batch.pk, "user": batch.created_by_id, "status": batch.status, "done": batch.done,
            "total": batch.total, "name": batch.name, "errors": len(batch.errors)}


def visible_batches(user):
    """The batches ``user`` may see: their own, or all for staff and holders of access.view_all_traffic."""
    return owned_by(Batch.objects.all(), user)


def recent_batches(user, limit=20):
    return list(visible_batches(user).select_related("created_by").order_by("-id")[:limit])


def feed_item(decision, expert_name, *, t=None):
    """The compact, JSON-safe shape of a decision on the live dashboard: the one builder for the live events
    (routing.services, stamped with their commit time ``t``), the snapshot's feed (dashboard.selectors, stamped with
    the decision's creation time) and the websocket benchmark. ``user`` (the prompt's owner) and ``source`` decide
    who may read ``prompt`` (access.roles.redact). ``t`` (epoch seconds) is included when given."""
    item = {"id": decision.pk, "user": decision.user_id, "source": decision.source,
            "prompt": decision.prompt[:120], "category": decision.category,
            "confidence": round(decision.confidence, 4), "entropy": round(decision.entropy, 4),
            "fallback_reason": decision.fallback_reason, "expert": expert_name,
            "latency_ms": round(decision.latency_ms, 3), "batch": decision.batch_id}
    if t is not None:
        item["t"] = t
    return item


RESULT_FIELDS = ["line", "id", "prompt", "category", "predicted_category", "confidence", "entropy", "margin",
                 "fallback", "fallback_reason", "expert", "label", "correct"]


ANSWER_FIELDS = ["answered_by", "answer_status", "answer_fallback_reason", "answer", "ttft_ms", "total_ms",
                 "simulated"]


def result_fields(batch):
    return RESULT_FIELDS + ANSWER_FIELDS if batch.answer else RESULT_FIELDS


def batch_results(batch):
    """One dict per routed prompt, in upload order (streamed: a 100,000-prompt batch never sits in memory).
    A batch run as "route and answer" adds the answer and who gave it."""
    columns = ["line", "external_id", "prompt", "category", "predicted_category", "confidence", "entropy", "margin",
               "fallback", "fallback_reason", "expert__name", "label"]
    if batch.answer:
        columns += ["answered_by__name", "calls__status", "answer_fallback_reason", "calls__response",
                    "calls__ttft_ms", "calls__total_ms", "calls__simulated"]
    rows = RoutingDecision.objects.filter(batch=batch).order_by("line").values_list(*columns)
    for row in rows.iterator(chunk_size=2000):
        line, ext, prompt, cat, pred, conf, ent, mar, fb, reason, expert, label = row[:12]
        out = {"line": line, "id": ext, "prompt": prompt, "category": cat, "predicted_category": pred,
               "confidence": round(conf, 5), "entropy": round(ent, 5), "margin": round(mar, 5), "fallback": fb,
               "fallback_reason": reason, "expert": expert, "label": label,
               "correct": (cat == label) if label else None}
        if batch.answer:
            out.update(zip(ANSWER_FIELDS, row[12:]))
        yield out


def pending_chunks(batch):
    """What is left of a batch and why: chunks per status, attempts used so far and the newest reason a chunk gave
    for waiting (a worker retrying after an outage, …), so the page can say what is pending."""
    rows = BatchChunk.objects.filter(batch=batch).values("status").annotate(n=Count("id"), tries=Max("attempts"))
    waiting = (BatchChunk.objects.filter(batch=batch, status__in=("pending", "claimed")).exclude(last_error="")
               .order_by("-queued_at").values_list("last_error", flat=True).first())
    return {"chunks": {r["status"]: r["n"] for r in rows}, "most_attempts": max((r["tries"] for r in rows), default=0),
            "reason": waiting or ""}


def batch_accuracy(batch):
    """Against the upload's labels: accuracy of the routed category (after fallback) and of the classifier's top
    category, or None without labels."""
    labelled = RoutingDecision.objects.filter(batch=batch).exclude(label="")
    n = labelled.count()
    if not n:
        return None
    routed = labelled.filter(category=F("label")).count()
    predicted = labelled.filter(predicted_category=F("label")).count()
    return {"labelled": n, "routed_accuracy": routed / n, "classifier_accuracy": predicted / n,
            "fallbacks": labelled.filter(fallback=True).count()}


# --- The map editor's impact preview ------------------------------------------------------------------------------

def impact_preview(draft, n=1000, fallback="general", splits=None):
    """Re-map the last ``n`` decisions under ``draft`` ({category: expert}, with traffic ``splits`` as
    publish_map takes them) and compare with what they used.

    Returns per-expert counts before/after, how many prompts would change expert, the average active parameters
    before/after, and the simulator's estimate of expert switches (SN40L-8, LRU) for both sequences.
    """
    rows = list(RoutingDecision.objects.order_by("-id").values_list("category", "expert__name", "prompt")[:n])
    rows.reverse()
    pool = {e.name: e for e in expert_pool()}
    before = [e for _, e, _ in rows]
    snapshot = MapSnapshot(0, 0, dict(draft), {}, dict(splits or {}))
    after = [snapshot.expert_for(c, fallback, prompt)[0] for c, _, prompt in rows]
    counts = {name: {"before": before.count(name), "after": after.count(name)} for name in sorted(pool)}

    def mean_active(seq):
        known = [pool[e].effective_active_parameters for e in seq if e in pool]
        return sum(known) / len(known) if known else 0.0

    lengths = [max(1, len(p) // 4) for _, _, p in rows]
    return {
        "decisions": len(rows),
        "changed": sum(a != b for a, b in zip(before, after)),
        "per_expert": counts,
        "avg_active_params_before": mean_active(before),
        "avg_active_params_after": mean_active(after),
        "switches": {"before": _simulated_switches(before, lengths, pool),
                     "after": _simulated_switches(after, lengths, pool)},
    }


def _simulated_switches(sequence, prompt_tokens, pool, machine="sn40l-8"):
    """Expert switches the simulator estimates for serving ``sequence`` in order (None if it cannot run)."""
    used = set(sequence)
    specs = [ExpertSpec(n, e.parameters, e.bytes_per_parameter) for n, e in pool.items() if n in used]
    try:
        return switches_for(sequence, prompt_tokens, specs, machine=machine, policy="lru")
    except ConfigError:
        return None
