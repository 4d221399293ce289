"""The reconciler as a Celery task: Celery beat runs it every COE_RECONCILE_EVERY_S in distributed mode."""
from celery import shared_task

from . import jobs


@shared_task(name=jobs.RECONCILE, ignore_result=True)
def reconcile():
    return jobs.reconcile()
