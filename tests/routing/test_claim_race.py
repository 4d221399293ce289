"""Two worker processes claim the same batch chunk at the same instant, many times over: exactly one gets it, every
time — for a pending chunk and for a stale claim being taken over (on PostgreSQL: real row locks; see tests/racers.py).
A read-then-write claim fails this within a few rounds."""
from datetime import timedelta

import pytest
from django.utils import timezone

from routing.models import Batch, BatchChunk

from ..racers import needs_postgresql, racing

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 40


def winners(outcomes):
    assert all(outcome == "ok" for outcome, _ in outcomes), outcomes
    return [token for _, token in outcomes if token is not None]


def test_two_processes_claiming_one_chunk_exactly_one_wins():
    needs_postgresql()
    batch = Batch.objects.create(total=ROUNDS, name="claim race")
    chunks = [BatchChunk.objects.create(batch=batch, index=i, items=[[i + 1, "p", None, None]]) for i in range(ROUNDS)]
    with racing() as race:
        for chunk in chunks:
            won = winners(race("claim_chunk", (chunk.pk,)))
            assert len(won) == 1, f"chunk {chunk.index}: {len(won)} workers claimed it"
            chunk.refresh_from_db()
            assert (chunk.status, chunk.claimed_by, chunk.attempts) == ("claimed", won[0], 1)


def test_two_processes_taking_over_one_stale_claim_exactly_one_wins(settings):
    needs_postgresql()
    batch = Batch.objects.create(total=ROUNDS, name="takeover race")
    long_ago = timezone.now() - timedelta(seconds=settings.COE_CHUNK_STALE_S + 60)
    chunks = [BatchChunk.objects.create(batch=batch, index=i, items=[[i + 1, "p", None, None]], status="claimed",
                                        claimed_at=long_ago, claimed_by="dead-host:1:0", attempts=1)
              for i in range(ROUNDS)]
    with racing() as race:
        for chunk in chunks:
            won = winners(race("claim_chunk", (chunk.pk,)))
            assert len(won) == 1, f"chunk {chunk.index}: {len(won)} workers took the stale claim over"
            chunk.refresh_from_db()
            assert (chunk.claimed_by, chunk.attempts) == (won[0], 2)
