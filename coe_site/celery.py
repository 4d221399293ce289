"""The Celery app. Workers check their services before taking work and stop (exit 1) when one is unreachable; a
worker that starts asks for a reconcile, so work a dead worker held is picked up soon (beat does it periodically)."""
import os
import sys

from celery import Celery
from celery.signals import worker_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coe_site.settings")

app = Celery("coe_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _check_services_before_work(**_):
    from coe_site.preflight import ServiceUnavailable, require_services

    try:
        require_services()
    except ServiceUnavailable as exc:  # SystemExit: Celery logs and ignores ordinary exceptions from signal handlers
        print(f"celery worker: {exc}", file=sys.stderr)
        raise SystemExit(1)


@worker_ready.connect
def _reconcile_on_start(**_):
    from coe_site import jobs

    jobs.send(jobs.RECONCILE)
