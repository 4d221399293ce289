"""Celery tasks: thin wrappers taking primary keys; the claim/idempotency logic is in services and twin."""
from celery import shared_task

from . import services, twin


@shared_task
def run_simulation(run_id):
    """Simulate one run with live progress; a duplicate delivery finds it claimed and does nothing."""
    return services.execute_run(run_id)


@shared_task
def finish_sweep(sweep_id):
    """Chord callback after every run of a sweep: store the comparison table, mark the sweep done."""
    return services.finish_sweep(sweep_id)


@shared_task
def live_twin_tick(twin_id, generation):
    """Advance the live twin once; only the delivery that won the position update schedules the next."""
    won = twin.tick(twin_id, generation)
    if won:
        twin.schedule(twin_id, generation)
    return won
