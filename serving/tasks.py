"""Celery tasks for serving. Thin, like routing's: a primary key in, a claim for idempotence, retries on outages."""
from celery import shared_task
from django.conf import settings

from coe_site.errors import OUTAGE
from coe_site.jobs import retry_delay
from routing.services import claim_chunk, note_chunk_error

from . import services


@shared_task(name="serving.answer_chunk", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def answer_chunk(self, chunk_id, token=None):
    """Claim (or keep, on a retry) one chunk of a "route and answer" batch, route and answer it, store both."""
    try:
        token = token or claim_chunk(chunk_id)
        if token is None:
            return "skipped"
        return services.answer_claimed_chunk(chunk_id, token)
    except OUTAGE as exc:
        note_chunk_error(chunk_id, f"retrying after {type(exc).__name__}")
        raise self.retry(args=(chunk_id, token), exc=exc, countdown=retry_delay(self.request.retries),
                         queue=settings.COE_BATCH_QUEUE)
