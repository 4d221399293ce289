"""Writes of serving that span routing: a "route and answer" batch chunk is routed by routing's service and answered
here, in the same transaction (routing.services.route_claimed_chunk stores decisions, answers and the chunk's mark
together, so a worker dying mid-chunk leaves nothing half-answered)."""
from routing.services import claim_chunk, renew_claim, route_claimed_chunk

from . import answering


def answer_claimed_chunk(chunk_id, token):
    """Route and answer a chunk claimed with ``token``; the claim is renewed while the experts answer."""
    return route_claimed_chunk(chunk_id, token,
                               answer=answering.batch_answerer(heartbeat=lambda: renew_claim(chunk_id, token)))


def process_answer_chunk(chunk_id):
    """Claim, route, answer and store one chunk. Returns "done", "skipped" (not ours to do), "lost" or "failed"."""
    token = claim_chunk(chunk_id)
    return "skipped" if token is None else answer_claimed_chunk(chunk_id, token)
