"""Wake workers for every unfinished batch chunk now (the reconciler's sweep, without waiting for it)."""
import json

from django.core.management.base import BaseCommand, CommandError

from routing.models import Batch
from routing.services import reconcile_batches, retry_failed_chunks


class Command(BaseCommand):
    help = ("Re-queue unfinished batch chunks (all batches, or --batch ID): pending chunks and those whose worker died "
            "get a worker again; chunks that used up their attempts fail with the reason; finished batches close. "
            "--retry-failed also gives a batch's failed chunks fresh attempts.")

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=None, help="only this batch")
        parser.add_argument("--retry-failed", action="store_true", help="retry the batch's failed chunks too")

    def handle(self, *args, batch=None, retry_failed=False, **options):
        if batch is not None and not Batch.objects.filter(pk=batch).exists():
            raise CommandError(f"No batch #{batch}.")
        if retry_failed and batch is None:
            raise CommandError("--retry-failed needs --batch ID.")
        retried = retry_failed_chunks(batch_id=batch) if retry_failed else 0
        report = {**reconcile_batches(batch_id=batch, idle_s=0), "retried_failed_chunks": retried}
        self.stdout.write(json.dumps(report))
