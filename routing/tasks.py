"""Celery tasks for routing. Thin: they take primary keys and call services; claims make them idempotent.

A database or broker outage is not the work's failure: the task retries with backoff (keeping its claim), and the
reconciler wakes a worker again for whatever is still unfinished, whatever became of the message.
"""
from celery import shared_task
from django.conf import settings

from coe_site import jobs
from coe_site.errors import OUTAGE
from coe_site.jobs import retry_delay

from . import services, training


@shared_task(name="routing.route_chunk", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def route_chunk(self, chunk_id, token=None):
    """Claim (or keep, on a retry) one batch chunk, route it and store its decisions."""
    try:
        token = token or services.claim_chunk(chunk_id)
        if token is None:
            return "skipped"
        return services.route_claimed_chunk(chunk_id, token)
    except OUTAGE as exc:
        services.note_chunk_error(chunk_id, f"retrying after {type(exc).__name__}")
        raise self.retry(args=(chunk_id, token), exc=exc, countdown=retry_delay(self.request.retries),
                         queue=settings.COE_BATCH_QUEUE)


@shared_task(name="routing.retrain_router", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def retrain_router(self, training_id):
    try:
        return training.run_training(training_id)
    except OUTAGE as exc:  # the claim goes stale and the reconciler (or this retry, once stale) takes it over
        raise self.retry(exc=exc, countdown=retry_delay(self.request.retries))
    except Exception as exc:
        training.fail_training(training_id, f"{type(exc).__name__}: {exc}")
        raise


@shared_task(name="routing.demo_tick", bind=True, ignore_result=True, max_retries=None)
def demo_tick(self, demo_id, generation, expect=None):
    """Route the demo prompts due now and send the next tick; a stopped or restarted demo's tick, or a duplicate
    one, ends its chain."""
    try:
        nxt = services.demo_tick(demo_id, generation, expect)
    except OUTAGE as exc:  # the reconciler also wakes a demo whose ticks stopped
        raise self.retry(exc=exc, countdown=retry_delay(self.request.retries))
    if nxt is not None:
        delay, ticks = nxt
        jobs.send(services.DEMO_TICK, demo_id, generation, ticks, countdown=delay)
