"""The Celery app. Workers check their services before taking work, so a bad broker/DB URL fails at start."""
import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coe_site.settings")

app = Celery("coe_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _check_services_before_work(**_):
    from coe_site.preflight import require_services

    require_services()
