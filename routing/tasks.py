"""Celery tasks for routing. Thin: they take primary keys and call services (claims make them idempotent)."""
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from . import services

# Chunk tasks go to settings.COE_BATCH_QUEUE (default "celery"), so routing can have workers of its own.


@shared_task(acks_late=True, ignore_result=True)
def route_chunk(chunk_id):
    """Claim, route and store one batch chunk; then, if only other workers' claims are left, watch for them dying."""
    outcome = services.process_chunk(chunk_id)
    if outcome == "done" and services.only_claims_left(chunk_id) and not settings.CELERY_TASK_ALWAYS_EAGER:
        sweep_stale_chunks.apply_async(countdown=settings.COE_CHUNK_STALE_S, queue=settings.COE_BATCH_QUEUE)
    return outcome


@shared_task(acks_late=True, ignore_result=True)
def sweep_stale_chunks():
    """Re-send chunks whose worker died mid-chunk; check again later while live claims remain."""
    _, claimed = services.requeue_stale_chunks()
    if claimed and not settings.CELERY_TASK_ALWAYS_EAGER:
        sweep_stale_chunks.apply_async(countdown=settings.COE_CHUNK_STALE_S, queue=settings.COE_BATCH_QUEUE)


@worker_ready.connect
def _sweep_on_start(sender=None, **_):
    """A worker starting (perhaps replacing one that was killed) picks up chunks the dead one held."""
    sweep_stale_chunks.apply_async(countdown=1, queue=settings.COE_BATCH_QUEUE)
