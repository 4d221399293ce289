"""Retraining the router as durable background work: request, claim, train, activate if it validates well enough.

A request is a RouterTraining row (one active at a time: a second request is refused at once); the task takes its
primary key and claims it with a conditional UPDATE, so a duplicate message does nothing and a training whose worker
died is taken over once its claim is stale (the reconciler re-sends it). The new router is activated only if its
cross-validated accuracy is at least the active router's, unless the requester overrides. Progress goes to the row
(polled by ``GET /api/router/retrain/<task_id>``) and to the ``map`` websocket group.
"""
import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from coe_site import jobs
from coe_site.realtime import send_now
from experts.services import audit

from .models import RouterTraining
from .selectors import active_router_row
from .services import activate_router, train_router

TASK = "routing.retrain_router"


class RetrainingBusy(RuntimeError):
    """Another training is queued or running."""

    def __init__(self, task_id):
        super().__init__(f"A retraining is already in progress (task {task_id}); wait for it to finish.")
        self.task_id = task_id


def request_training(*, user, override=False):
    """Queue a training (started once the transaction commits); RetrainingBusy while another is active."""
    try:
        with transaction.atomic():
            row = RouterTraining.objects.create(task_id=str(uuid.uuid4()), override=override,
                                                requested_by=user if getattr(user, "pk", None) else None)
    except IntegrityError:
        busy = RouterTraining.objects.filter(active=True).values_list("task_id", flat=True).first()
        raise RetrainingBusy(busy) from None
    jobs.enqueue(TASK, row.pk)
    return row


def claim_training(training_id):
    """Claim a queued training, or a running one whose claim went stale (its worker died); the token or None."""
    token = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    stale = timezone.now() - timedelta(seconds=settings.COE_TRAINING_STALE_S)
    claimed = (RouterTraining.objects.filter(pk=training_id, active=True)
               .filter(Q(status="queued") | Q(status="running", claimed_at__lt=stale))
               .update(status="running", claimed_at=timezone.now(), claimed_by=token, attempts=F("attempts") + 1))
    return token if claimed else None


def run_training(training_id):
    """Claim and run one training; returns "done", "skipped" (not ours to run) or "lost" (taken over meanwhile)."""
    token = claim_training(training_id)
    if token is None:
        return "skipped"
    row = RouterTraining.objects.select_related("requested_by").get(pk=training_id)
    current = active_router_row()
    steps = []

    def progress(candidate):  # also renews the claim: a live training is not taken for a dead one
        steps.append(candidate)
        RouterTraining.objects.filter(pk=training_id, claimed_by=token).update(progress=steps,
                                                                                claimed_at=timezone.now())
        send_now("map", "router.training", {"task_id": row.task_id, "step": len(steps), "candidate": candidate})

    new = train_router(classifier="auto", user=row.requested_by, activate=False, progress=progress)
    new_acc = new.metrics["validation"]["accuracy"]
    old_acc = current.metrics["validation"]["accuracy"] if current else None
    activate = row.override or old_acc is None or new_acc >= old_acc
    result = {"task_id": row.task_id, "router_version": new.version, "activated": activate,
              "override": row.override, "new_accuracy": new_acc, "previous_accuracy": old_acc,
              "previous_version": current.version if current else None, "metrics": new.metrics["validation"]}
    with transaction.atomic():
        if not RouterTraining.objects.filter(pk=training_id, claimed_by=token).update(
                status="done", active=False, result=result, finished_at=timezone.now()):
            return "lost"  # another worker took it over; its result will stand
        if activate:
            activate_router(router_id=new.pk)
        audit(user=row.requested_by, action="retrain", object_type="router", object_name=f"v{new.version}",
              changes=result)
        transaction.on_commit(lambda: send_now("map", "router.trained", result))
    return "done"


def fail_training(training_id, message):
    """Give up on a training (an error that retrying cannot fix), freeing the slot for the next request."""
    RouterTraining.objects.filter(pk=training_id, active=True).update(
        status="failed", active=False, error=message[:2000], finished_at=timezone.now())
    send_now("map", "router.trained", {"task_id": RouterTraining.objects.get(pk=training_id).task_id,
                                       "error": message})


def training_status(task_id):
    """The API's view of a training (Celery-like states, which the editor's poller reads); None if unknown."""
    row = RouterTraining.objects.filter(task_id=task_id).first()
    if row is None:
        return None
    state = {"queued": "PENDING", "running": "PROGRESS", "done": "SUCCESS", "failed": "FAILURE"}[row.status]
    return {"task_id": row.task_id, "state": state, "status": row.status, "step": len(row.progress),
            "candidates": row.progress, **row.result, **({"error": row.error} if row.error else {})}


def reconcile_trainings():
    """Wake a worker for every active training that is queued or whose claim went stale."""
    stale = timezone.now() - timedelta(seconds=settings.COE_TRAINING_STALE_S)
    ids = list(RouterTraining.objects.filter(active=True).filter(
        Q(status="queued", created_at__lt=timezone.now() - timedelta(seconds=settings.COE_RECONCILE_IDLE_S))
        | Q(status="running", claimed_at__lt=stale)).values_list("pk", flat=True))
    for pk in ids:
        jobs.send(TASK, pk)
    return {"woken": len(ids)}
