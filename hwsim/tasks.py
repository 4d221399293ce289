"""Celery tasks, by explicit name (started with coe_site.jobs.enqueue/send): thin wrappers taking primary keys; the
claims and idempotency are in services and twin.

A database or broker outage is not the work's failure: the task retries with backoff (keeping its claim), and the
reconciler wakes a worker again for whatever is still unfinished, whatever became of the message.
"""
from celery import shared_task

from coe_site.errors import OUTAGE
from coe_site.jobs import retry_delay

from . import services, twin


@shared_task(name=services.RUN_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def run_simulation(self, run_id, token=None):
    """Claim (or keep, on a retry) one run, simulate it with live progress, store its outputs and downloads."""
    try:
        token = token or services.claim_run(run_id)
        if token is None:
            return "skipped"
        return services.execute_run(run_id, token)
    except OUTAGE as exc:
        raise self.retry(args=(run_id, token), exc=exc, countdown=retry_delay(self.request.retries))


@shared_task(name=services.EXPORT_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def write_exports(self, run_id, token=None):
    """Write the stored downloads of a finished run that has none (asked for from its page)."""
    try:
        token = token or services.claim_exports(run_id)
        if token is None:
            return "skipped"
        return services.write_exports(run_id, token)
    except OUTAGE as exc:
        raise self.retry(args=(run_id, token), exc=exc, countdown=retry_delay(self.request.retries))


@shared_task(name=twin.TICK_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def live_twin_tick(self, twin_id, generation, expect=None):
    """Advance the live twin once; only the delivery that won the update schedules the next tick."""
    try:
        ticks = twin.tick(twin_id, generation, expect)
    except OUTAGE as exc:
        raise self.retry(exc=exc, countdown=retry_delay(self.request.retries))
    if ticks is not None:  # the next tick goes where this one came from (a worker's queue, or the default)
        twin.schedule(twin_id, generation, ticks, queue=(self.request.delivery_info or {}).get("routing_key"))
    return ticks
