"""Retraining the router after taxonomy edits, as a Celery task with live progress.

The new router is activated only if its cross-validated accuracy is at least the active router's (or the
operator overrides). Progress goes to the ``map`` websocket group and to the task's result state.
"""
import threading
import uuid

from celery import shared_task
from celery.result import AsyncResult
from django.conf import settings
from django.db import connection, transaction

from coe_site.realtime import send_now


@shared_task(bind=True)
def retrain_router(self, user_id=None, override=False):
    from django.contrib.auth import get_user_model

    from routing.models import RouterModel
    from routing.selectors import active_router_row
    from routing.services import train_router

    from .services import audit

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    current = active_router_row()
    steps = []

    def progress(row):
        steps.append(row)
        info = {"task_id": self.request.id, "step": len(steps), "candidate": row}
        if not self.request.called_directly:
            self.update_state(state="PROGRESS", meta=info)
        send_now("map", "router.training", info)

    new = train_router(classifier="auto", user=user, activate=False, progress=progress)
    new_acc = new.metrics["validation"]["accuracy"]
    old_acc = current.metrics["validation"]["accuracy"] if current else None
    activate = override or old_acc is None or new_acc >= old_acc
    if activate:
        with transaction.atomic():
            RouterModel.objects.filter(is_active=True).update(is_active=False)
            RouterModel.objects.filter(pk=new.pk).update(is_active=True)
    result = {"task_id": self.request.id, "router_version": new.version, "activated": activate,
              "override": override, "new_accuracy": new_acc, "previous_accuracy": old_acc,
              "previous_version": current.version if current else None, "metrics": new.metrics["validation"]}
    audit(user, "retrain", "router", f"v{new.version}", result)
    send_now("map", "router.trained", result)
    return result


def _run_in_thread(args, task_id):
    try:
        retrain_router.apply(args, task_id=task_id)
    finally:
        connection.close()


def enqueue_retraining(user, override=False):
    """Queue retraining on commit; in embedded mode run it in a background thread so the request returns."""
    args = (getattr(user, "pk", None), override)
    task_id = str(uuid.uuid4())
    if settings.CELERY_TASK_ALWAYS_EAGER:
        transaction.on_commit(lambda: threading.Thread(target=_run_in_thread, args=(args, task_id),
                                                       daemon=True).start())
    else:
        transaction.on_commit(lambda: retrain_router.apply_async(args, task_id=task_id))
    return task_id


def retraining_status(task_id):
    result = AsyncResult(task_id)
    info = result.info if isinstance(result.info, dict) else ({"error": str(result.info)} if result.info else {})
    return {"task_id": task_id, "state": result.state, **info}
