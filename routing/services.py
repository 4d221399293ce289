"""Writes for routing: train and activate routers, route prompts and store the decisions, route batches."""
import json
import logging
import os
import random
import socket
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from coe_site import jobs, realtime
from experts.selectors import active_categories, current_map

from .engine import inputs
from .engine import router as engine
from .models import Batch, BatchChunk, DemoTraffic, RouterModel, RoutingDecision
from .defaults import seed_examples
from .selectors import NoActiveRouter, active_router, batch_progress, feed_item, seed_training_data

log = logging.getLogger(__name__)
MAX_STORED_ERRORS = 1000
ROUTE_CHUNK = "routing.route_chunk"
ANSWER_CHUNK = "serving.answer_chunk"  # route and answer: serving's task, sent by name (serving is above routing)
COLUMN_LIMITS = {"max_id_chars": RoutingDecision._meta.get_field("external_id").max_length,
                 "max_label_chars": RoutingDecision._meta.get_field("label").max_length}


class RoutingInputError(ValueError):
    pass


def activate_router(*, router_id):
    """Make router ``router_id`` the one active router, in one transaction: the old one is switched off before the
    new one is switched on (the partial unique constraint on is_active allows one active row at any moment). An
    unknown id raises RouterModel.DoesNotExist and leaves the active router as it was."""
    with transaction.atomic():
        RouterModel.objects.filter(is_active=True).exclude(pk=router_id).update(is_active=False)
        if not RouterModel.objects.filter(pk=router_id).update(is_active=True):
            raise RouterModel.DoesNotExist(f"no router with id {router_id}")


def train_router(*, prompts=None, labels=None, classifier="auto", user=None, activate=True, progress=None):
    """Train on (prompts, labels) — by default the categories' seed prompts — and store a new RouterModel, made the
    active one (activate_router) unless ``activate`` is false."""
    if prompts is None:
        prompts, labels = seed_training_data()
    known = {c.name for c in active_categories()}
    unknown = sorted(set(labels) - known)
    if unknown:
        raise RoutingInputError(f"unknown categor{'ies' if len(unknown) > 1 else 'y'} in training data: "
                                f"{', '.join(unknown)} (add them as categories first).")
    router = engine.train(prompts, labels, classifier=classifier, embedder_path=settings.COE_EMBEDDER_PATH or None,
                          progress=progress, runtime=settings.COE_EMBEDDER_RUNTIME)
    meta = router.meta
    with transaction.atomic():
        version = (RouterModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        row = RouterModel.objects.create(
            version=version, is_active=False, embedder_id=meta["embedder_id"], classifier=meta["classifier"],
            params=meta["params"], thresholds=router.thresholds, categories=router.categories,
            training_data_hash=meta["training_data_hash"], training_size=meta["training_size"],
            metrics={"validation": meta["validation"], "candidates": meta["candidates"], "folds": meta["folds"]},
            artifact=router.to_bytes(), created_by=user)
        if activate:
            activate_router(router_id=row.pk)
            row.is_active = True
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


def _publish_decisions(decisions, experts):
    committed = time.time()
    realtime.dashboard.add_decisions([feed_item(d, e, t=committed) for d, e in zip(decisions, experts)])


def route_prompts(*, prompts, source, user=None, fields=None, on_write=None, answer=None):
    """Route prompts in one batched call and store one RoutingDecision each (one transaction), owned by ``user``.

    Returns the public dicts, in input order. ``fields``: optional extra model fields per prompt (batch, line,
    external id, label). ``on_write``: optional callable run inside the write transaction before the insert;
    raising aborts the write (a batch chunk uses it to check its claim and mark itself done atomically).
    ``answer``: optional callable(prompts, expert names) → (answers, write) run between routing and the write,
    where ``answers`` holds per-prompt (answering expert pk, fallback reason) and ``write(decisions)`` stores the
    expert calls inside the same transaction (a batch run as "route and answer").
    The dashboard hears about the decisions once the transaction commits.
    """
    decisions, extras = decide_prompts(prompts, source, user=user, fields=fields)
    write_answers = None
    if answer is not None:
        answers, write_answers = answer(list(prompts), [e["expert"] for e in extras])
        for decision, (expert_id, reason) in zip(decisions, answers):
            decision.answered_by_id, decision.answer_fallback_reason = expert_id, reason[:40]
    return store_decisions(decisions=decisions, extras=extras, on_write=on_write, write_answers=write_answers)


def decide_prompts(prompts, source, *, user=None, fields=None, router=None, snapshot=None):
    """Route prompts in one batched call: (one unsaved RoutingDecision each, their public extras: expert, map and
    router versions). ``router`` ((row, Router)) and ``snapshot``: when the caller has just read them (the chat
    endpoint checks both versions in one query), else the active router and the current map."""
    row, router = router or active_router()
    snapshot = snapshot or current_map()
    if snapshot is None:
        raise RoutingInputError("No category→expert map exists yet.")
    results = router.route(prompts)
    decisions, extras = [], []
    for i, (prompt, r) in enumerate(zip(prompts, results)):
        expert_name, expert_id = snapshot.expert_for(r.category, router.fallback, prompt)
        decisions.append(RoutingDecision(
            source=source, user=user if getattr(user, "pk", None) else None, prompt=prompt, category=r.category, predicted_category=r.predicted,
            confidence=r.confidence, probabilities=r.probabilities, entropy=r.entropy, margin=r.margin,
            fallback=r.fallback, fallback_reason=r.fallback_reason, expert_id=expert_id,
            map_version_id=snapshot.version_id, router_id=row.pk, latency_ms=r.latency_ms,
            **(fields[i] if fields else {})))
        extras.append({"expert": expert_name, "map_version": snapshot.version, "router_version": row.version})
    return decisions, extras


def store_decisions(*, decisions, extras, on_write=None, write_answers=None):
    """Store decisions from decide_prompts in one transaction (see route_prompts for ``on_write`` and
    ``write_answers``); the public dicts, in order. The dashboard hears about them once it commits."""
    with transaction.atomic():
        if on_write is not None:
            on_write()
        RoutingDecision.objects.bulk_create(decisions, batch_size=500)
        if write_answers is not None:
            write_answers(decisions)
        experts = [e["expert"] for e in extras]
        transaction.on_commit(lambda: _publish_decisions(decisions, experts))
    return [decision_dict(d, e) for d, e in zip(decisions, extras)]


# --- Batches: upload → chunks → claimed and routed by tasks ----------------------------------------------------

class BatchRejected(ValueError):
    """An upload with problems; nothing was stored (the valid part is rejected with the rest)."""

    def __init__(self, errors):
        self.errors = errors  # [{"line": int, "message": str}]
        first = errors[0]
        super().__init__(f"line {first['line']}: {first['message']}" if first["line"] else first["message"])


class ClaimLost(RuntimeError):
    """Another worker re-claimed this chunk (ours was presumed dead): our decisions must not be written."""


def _error(line, message):
    return {"line": line, "message": message}


def parse_upload(data, filename=""):
    """[Item] from uploaded bytes (text, JSONL or CSV), or BatchRejected listing each bad line."""
    limit = settings.COE_BATCH_MAX_BYTES
    if len(data) > limit:
        raise BatchRejected([_error(0, f"the file is {len(data)} bytes; the limit is {limit} bytes "
                                       f"(COE_BATCH_MAX_BYTES)")])
    if not data.strip():
        raise BatchRejected([_error(0, "the file is empty")])
    try:
        text = inputs.decode(data, filename or "the file")
    except inputs.InputFormatError as exc:
        raise BatchRejected([_error(exc.line, str(exc).split(": ", 1)[-1])])
    items, errors = inputs.read_items(text, inputs.sniff_format(text, filename), settings.COE_ROUTE_MAX_BYTES,
                                      settings.COE_BATCH_MAX_PROMPTS, **COLUMN_LIMITS)
    if errors:
        raise BatchRejected([_error(e.line, str(e).split(": ", 1)[-1] if e.line else str(e)) for e in errors])
    return items


def parse_prompt_list(values):
    """[Item] from a JSON list of strings or {prompt, id?, category?} objects; "line" is the 1-based position."""
    if not isinstance(values, list) or not values:
        raise BatchRejected([_error(0, "'prompts' must be a non-empty list")])
    if len(values) > settings.COE_BATCH_MAX_PROMPTS:
        raise BatchRejected([_error(0, f"{len(values)} prompts; the limit is {settings.COE_BATCH_MAX_PROMPTS} "
                                       f"(COE_BATCH_MAX_PROMPTS)")])
    lines = [json.dumps(v if isinstance(v, dict) else {"prompt": v}) for v in values]
    items, errors = inputs.read_items("\n".join(lines), "jsonl", settings.COE_ROUTE_MAX_BYTES, **COLUMN_LIMITS)
    if errors:
        raise BatchRejected([_error(e.line, f"item {e.line}: " + str(e).split(": ", 1)[-1]) for e in errors])
    return items


def create_batch(*, items, name="", user=None, answer=False):
    """Store a batch and its chunks in one transaction; workers are woken for the chunks once it commits.
    ``answer``: also ask each prompt's expert for an answer (smaller chunks: an answer takes seconds, a route ms).

    The pending chunk rows are the outbox: if the wake-up cannot be sent (the broker is down), the upload still
    stands and the reconciler (reconcile_batches) sends it when it can."""
    size = settings.COE_BATCH_ANSWER_CHUNK_SIZE if answer else settings.COE_BATCH_CHUNK_SIZE
    with transaction.atomic():
        batch = Batch.objects.create(name=name[:200], total=len(items), created_by=user, answer=answer,
                                     labelled=sum(1 for item in items if item[3]))
        chunks = BatchChunk.objects.bulk_create(
            BatchChunk(batch=batch, index=n, items=[list(item) for item in items[start:start + size]],
                       queued_at=timezone.now())
            for n, start in enumerate(range(0, len(items), size)))
        for chunk in chunks:
            jobs.enqueue(ANSWER_CHUNK if answer else ROUTE_CHUNK, chunk.pk, queue=settings.COE_BATCH_QUEUE)
        transaction.on_commit(lambda: realtime.dashboard.add_batch(batch_progress(batch)))
    return batch


def claim_chunk(chunk_id):
    """Claim a pending chunk, or one whose claim went stale (its worker died); returns the claim token or None."""
    token = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    now = timezone.now()
    stale = now - timedelta(seconds=settings.COE_CHUNK_STALE_S)
    claimed = (BatchChunk.objects.filter(pk=chunk_id)
               .filter(Q(status="pending") | Q(status="claimed", claimed_at__lt=stale))
               .update(status="claimed", claimed_at=now, claimed_by=token, attempts=F("attempts") + 1))
    return token if claimed else None


def process_chunk(chunk_id):
    """Claim, route and store one chunk. Returns "done", "skipped" (not ours to do), "lost" or "failed"."""
    token = claim_chunk(chunk_id)
    return "skipped" if token is None else route_claimed_chunk(chunk_id, token)


def route_claimed_chunk(chunk_id, token, *, answer=None):
    """Route a chunk claimed with ``token``; writes nothing if the claim was taken over meanwhile. ``answer``: for a
    "route and answer" batch, serving's answer hook (serving.services.answer_claimed_chunk passes it); a chunk of
    such a batch woken without one (a message sent before answering had its own task) is handed over to it.

    The decisions, the chunk's "done" mark and the batch counter are written in one transaction, guarded by the
    claim token: a worker that was presumed dead and wakes up finds its claim gone and writes nothing."""
    chunk = BatchChunk.objects.select_related("batch__created_by").get(pk=chunk_id)
    batch_id = chunk.batch_id
    if Batch.objects.filter(pk=batch_id, status="queued").update(status="running"):
        realtime.dashboard.add_batch(batch_progress(Batch.objects.get(pk=batch_id)))
    items = chunk.items

    def mark_done():
        if not BatchChunk.objects.filter(pk=chunk_id, status="claimed", claimed_by=token).update(status="done"):
            raise ClaimLost(f"chunk {chunk_id} was re-claimed by another worker")
        Batch.objects.filter(pk=batch_id).update(done=F("done") + len(items))

    fields = [{"batch_id": batch_id, "line": line, "external_id": ext, "label": label}
              for line, _, ext, label in items]
    if chunk.batch.answer and answer is None:
        if BatchChunk.objects.filter(pk=chunk_id, status="claimed", claimed_by=token).update(status="pending",
                                                                                              claimed_by=""):
            jobs.send(ANSWER_CHUNK, chunk_id, queue=settings.COE_BATCH_QUEUE)
        return "handed over"
    try:
        route_prompts(prompts=[item[1] for item in items], source="batch", user=chunk.batch.created_by,
                      fields=fields, on_write=mark_done, answer=answer)
        outcome = "done"
    except ClaimLost:
        return "lost"
    except (RoutingInputError, NoActiveRouter) as exc:
        _fail_chunk(chunk_id, token, batch_id, items, str(exc))
        outcome = "failed"
    finish_batch_if_complete(batch_id)
    return outcome


def renew_claim(chunk_id, token):
    """Renew a claim while its prompts are being answered, so a live worker is not taken for a dead one."""
    BatchChunk.objects.filter(pk=chunk_id, status="claimed", claimed_by=token).update(claimed_at=timezone.now())


def _fail_chunk(chunk_id, token, batch_id, items, message):
    with transaction.atomic():
        if not BatchChunk.objects.filter(pk=chunk_id, status="claimed", claimed_by=token).update(status="failed"):
            return
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        room = max(0, MAX_STORED_ERRORS - len(batch.errors))
        batch.errors += [_error(line, f"routing failed: {message}") for line, *_ in items[:room]]
        batch.save(update_fields=["errors"])


def finish_batch_if_complete(batch_id):
    """Mark the batch done (or failed, if a chunk failed) once no chunk is left pending or claimed."""
    chunks = BatchChunk.objects.filter(batch_id=batch_id)
    if chunks.filter(status__in=("pending", "claimed")).exists():
        return False
    status = "failed" if chunks.filter(status="failed").exists() else "done"
    if Batch.objects.filter(pk=batch_id, status__in=("queued", "running")).update(status=status,
                                                                                   finished_at=timezone.now()):
        transaction.on_commit(lambda: realtime.dashboard.add_batch(batch_progress(Batch.objects.get(pk=batch_id))))
    return True


def note_chunk_error(chunk_id, message):
    """Say on the chunk why its last attempt did not finish (shown on the batch page). Best effort: the database may
    be the thing that is down."""
    try:
        BatchChunk.objects.filter(pk=chunk_id).update(last_error=message[:300])
    except Exception:
        log.warning("could not note why chunk %s is waiting: %s", chunk_id, message)


def reconcile_batches(*, batch_id=None, now=None, idle_s=None):
    """Make sure every unfinished chunk gets a worker, whatever happened to its message; give up on chunks that
    keep failing; finish batches with nothing left. Returns counts. Run periodically (coe_site.jobs reconciler) and
    by ``manage.py requeue_batches`` (``idle_s=0``: wake workers for every unfinished chunk now).

    - pending chunks whose last wake-up is older than ``idle_s`` (COE_RECONCILE_IDLE_S), and claimed chunks whose
      claim is stale (their worker died or lost the database): woken again (a duplicate wake-up does nothing);
    - chunks that used COE_CHUNK_MAX_ATTEMPTS attempts without finishing: failed, with the reason on their lines.
    """
    now = now or timezone.now()
    idle = now - timedelta(seconds=settings.COE_RECONCILE_IDLE_S if idle_s is None else idle_s)
    stale = now - timedelta(seconds=settings.COE_CHUNK_STALE_S)
    unfinished = BatchChunk.objects.filter(Q(status="pending") | Q(status="claimed", claimed_at__lt=stale))
    if batch_id is not None:
        unfinished = unfinished.filter(batch_id=batch_id)
    exhausted = list(unfinished.filter(attempts__gte=settings.COE_CHUNK_MAX_ATTEMPTS)
                     .values_list("pk", "batch_id", "items", "last_error"))
    for pk, batch, items, reason in exhausted:
        token = claim_chunk(pk)
        if token:
            _fail_chunk(pk, token, batch, items, f"gave up after {settings.COE_CHUNK_MAX_ATTEMPTS} attempts"
                                                 f"{f' ({reason})' if reason else ''}")
    due = list(unfinished.exclude(pk__in=[e[0] for e in exhausted])
               .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=idle))
               .values_list("pk", "batch__answer"))
    if due:
        BatchChunk.objects.filter(pk__in=[pk for pk, _ in due]).update(queued_at=now)
        for pk, answer in due:
            jobs.send(ANSWER_CHUNK if answer else ROUTE_CHUNK, pk, queue=settings.COE_BATCH_QUEUE)
    open_batches = Batch.objects.filter(status__in=("queued", "running"))
    if batch_id is not None:
        open_batches = open_batches.filter(pk=batch_id)
    finished = sum(finish_batch_if_complete(b) for b in open_batches.exclude(
        chunks__status__in=("pending", "claimed")).values_list("pk", flat=True))
    return {"woken": len(due), "gave_up": len(exhausted), "finished": finished}


def retry_failed_chunks(*, batch_id):
    """Put a batch's failed chunks back to pending (fresh attempts) and reopen it; returns how many."""
    with transaction.atomic():
        lines = {line for items in BatchChunk.objects.filter(batch_id=batch_id, status="failed")
                 .values_list("items", flat=True) for line, *_ in items}
        n = BatchChunk.objects.filter(batch_id=batch_id, status="failed").update(
            status="pending", attempts=0, claimed_by="", claimed_at=None, queued_at=None, last_error="")
        if n:
            batch = Batch.objects.select_for_update().get(pk=batch_id)
            batch.errors = [e for e in batch.errors if e["line"] not in lines]
            batch.status, batch.finished_at = "running", None
            batch.save(update_fields=["errors", "status", "finished_at"])
    return n


# --- Demo traffic ------------------------------------------------------------------------------------------------

def demo_prompts(batch_id=None):
    """The prompts a demo replays: a batch's, or the shipped seed prompts (shuffled with a fixed seed)."""
    if batch_id is not None:
        prompts = [item[1] for items in BatchChunk.objects.filter(batch_id=batch_id).values_list("items", flat=True)
                   for item in items]
        if not prompts:
            raise RoutingInputError(f"batch #{batch_id} has no prompts")
        return prompts
    prompts = [p for p, _ in seed_examples()]
    random.Random(0).shuffle(prompts)
    return prompts


def demo_due(elapsed, rate, sent):
    """How many prompts a demo at ``rate`` prompts/s should route now, ``elapsed`` seconds after it started, having
    routed ``sent``: what is due (the first at once), at most one second's worth when it fell behind."""
    return min(int(elapsed * rate) + 1 - sent, max(1, int(rate)))


def run_demo_traffic(*, rate, prompts, stop, duration=None, tick=0.1):
    """Route ``prompts`` round-robin at ``rate`` prompts/s until ``stop`` (a threading.Event) is set or
    ``duration`` seconds pass, in the calling thread (``manage.py demo_traffic``). Each tick routes what is due in
    one batched call. Returns prompts routed."""
    if rate <= 0:
        raise RoutingInputError("rate must be positive")
    active_router()  # load the router and the embedder before the clock starts
    start, sent, cursor = time.monotonic(), 0, 0
    while not stop.is_set():
        woke = time.monotonic()
        if duration is not None and woke - start >= duration:
            break
        due = demo_due(woke - start, rate, sent)
        if due > 0:
            group = [prompts[(cursor + i) % len(prompts)] for i in range(due)]
            cursor = (cursor + due) % len(prompts)
            route_prompts(prompts=group, source="demo")
            sent += due
        next_prompt = start + sent / rate
        stop.wait(max(0.0, max(next_prompt, woke + tick) - time.monotonic()))  # routing time counts in the tick
    return sent


DEMO_TICK = "routing.demo_tick"
DEMO_TICK_S = 0.1  # the shortest wait between two ticks
DEMO_LATE_S = 10  # a running demo not ticked for this long lost its tick message: the reconciler sends another
_demo_prompts = {}  # (generation, batch id) -> prompts, so a tick does not read a batch's chunks every 0.1 s


def start_demo(*, rate, batch_id=None):
    """Start demo traffic (one at a time, wherever it was started): the row, then the first tick on commit."""
    if rate <= 0:
        raise RoutingInputError("rate must be positive")
    demo_prompts(batch_id)  # refuse a batch without prompts now, not in a tick
    with transaction.atomic():
        demo, _ = DemoTraffic.objects.select_for_update().get_or_create(name="default")
        if demo.running:
            raise RoutingInputError("a demo is already running; stop it first")
        demo.running, demo.rate, demo.batch_id, demo.generation = True, rate, batch_id, demo.generation + 1
        demo.started_at = demo.ticked_at = timezone.now()
        demo.sent = demo.ticks = 0
        demo.save()
        jobs.enqueue(DEMO_TICK, demo.pk, demo.generation, 0)
    return demo_state()


def stop_demo():
    """Stop demo traffic. Ticks route under the row's lock, so once this returns no demo prompt is routed."""
    with transaction.atomic():
        DemoTraffic.objects.select_for_update().filter(name="default").update(running=False)
    return demo_state()


def demo_state():
    demo = DemoTraffic.objects.filter(name="default", running=True).first()
    return {"running": demo is not None, "rate": demo.rate if demo else None, "batch": demo.batch_id if demo else None}


def demo_tick(demo_id, generation, expect, *, now=None):
    """Route the demo prompts due now (under the row's lock) and return (seconds until the next tick, the tick count
    to send it for), or None when this demo (this generation) is no longer running or this tick was sent for a count
    another delivery has already run (``expect``: the row's ``ticks`` when it was sent; None runs whatever it is)."""
    with transaction.atomic():
        demo = DemoTraffic.objects.select_for_update().filter(pk=demo_id, running=True, generation=generation).first()
        if demo is None or expect not in (None, demo.ticks):
            return None
        now = now or timezone.now()
        elapsed = (now - demo.started_at).total_seconds()
        due = demo_due(elapsed, demo.rate, demo.sent)
        if due > 0:
            key = (generation, demo.batch_id)
            if key not in _demo_prompts:
                _demo_prompts.clear()
                _demo_prompts[key] = demo_prompts(demo.batch_id)
            prompts = _demo_prompts[key]
            route_prompts(prompts=[prompts[(demo.sent + i) % len(prompts)] for i in range(due)], source="demo")
            demo.sent += due
        demo.ticked_at, demo.ticks = now, demo.ticks + 1
        demo.save(update_fields=["sent", "ticked_at", "ticks"])
    return max(DEMO_TICK_S, demo.sent / demo.rate - elapsed), demo.ticks


def reconcile_demo(*, now=None):
    """Send a tick to running demo traffic whose last tick is older than DEMO_LATE_S (its message was lost or its
    worker died), so a demo keeps going whatever became of a message."""
    now = now or timezone.now()
    late = list(DemoTraffic.objects.filter(running=True, ticked_at__lt=now - timedelta(seconds=DEMO_LATE_S))
                .values_list("pk", "generation", "ticks"))
    for pk, generation, ticks in late:
        jobs.send(DEMO_TICK, pk, generation, ticks)
    return {"demos_woken": len(late)}


def record_answer(*, decision_id, expert_id, reason):
    """Note on a decision which expert answered and, when it was not the chosen one, why."""
    RoutingDecision.objects.filter(pk=decision_id).update(answered_by_id=expert_id, answer_fallback_reason=reason[:40])
