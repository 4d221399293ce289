"""Chunk claiming and batch completion, rule by rule: how a batch is split and its workers woken, what a claim is and
exactly when one goes stale, what a chunk run writes (and writes nothing when its claim was lost), how a failure is
recorded, when a batch ends and how, what the reconciler wakes, gives up on and finishes, and what a retry resets.
Written to kill mutants of those functions of routing/services.py (scripts/mutation.sh chunks).

The router is a stand-in (digits -> math, else general) installed as the active one: these rules are about claims
and batches, and a trained router would make each mutant's run take a minute. The race between processes claiming one
chunk is tested on PostgreSQL in test_claim_race.py; here, that a claim is one conditional UPDATE."""
import os
import re
import socket
import types
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from routing import selectors, services
from routing.engine.inputs import Item
from routing.engine.router import RouteResult
from routing.models import Batch, BatchChunk, RouterModel, RoutingDecision
from serving import services as serving_services

pytestmark = pytest.mark.django_db
T = timezone.now().replace(microsecond=0)
US = timedelta(microseconds=1)


class DigitRouter:
    """Stands in for a trained router: prompts with a digit are math, the rest general."""

    fallback = "general"

    def route(self, prompts):
        return [RouteResult(category=c, predicted=c, confidence=1.0, probabilities=[[c, 1.0]], entropy=0.0,
                            margin=1.0, nearest_similarity=1.0, fallback=False, fallback_reason="", latency_ms=0.5)
                for c in ("math" if any(ch.isdigit() for ch in p) else "general" for p in prompts)]


@pytest.fixture(autouse=True)
def router(db, monkeypatch):
    row = RouterModel.objects.create(version=1, is_active=True, embedder_id="stand-in", classifier="digits",
                                     training_data_hash="-", training_size=0, artifact=b"")
    head = RouterModel.objects.filter(pk=row.pk).values_list("pk", "version", "created_at").first()
    for key, value in (("version", head), ("row", row), ("router", DigitRouter())):
        monkeypatch.setitem(selectors._cache, key, value)
    return row


@pytest.fixture
def woken(monkeypatch):
    """The wake-ups sent (not run: each test decides what a worker does), as (task, args, queue)."""
    calls = []
    monkeypatch.setattr(services.jobs, "send", lambda name, *args, queue=None, countdown=None:
                        calls.append((name, args, queue)))
    return calls


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` runs the block's on-commit callbacks at its end, as if its transaction committed."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def progress(monkeypatch):
    """Batch progress the dashboard was given, in order."""
    got = []
    monkeypatch.setattr(services.realtime.dashboard, "add_batch", got.append)
    return got


def items(n, start=1, label=""):
    return [Item(start + i, f"prompt {i}" if i % 2 else f"prompt number {'x' * i}", f"id-{start + i}", label)
            for i in range(n)]


def batch_of(settings, n=6, size=2, user=None, **kw):
    settings.COE_BATCH_CHUNK_SIZE = size
    return services.create_batch(items=items(n), name="b", user=user, **kw)


def chunks(batch):
    return list(BatchChunk.objects.filter(batch=batch).order_by("index"))


def frozen(monkeypatch, now):
    monkeypatch.setattr(services, "timezone", types.SimpleNamespace(now=lambda: now))


# -- creating a batch ----------------------------------------------------------------------------------------

def test_a_batch_is_split_into_chunks_in_order_and_each_chunks_worker_is_woken_on_commit(settings, woken, user,
                                                                                         progress, committed):
    settings.COE_BATCH_QUEUE = "batches"
    before = timezone.now()
    with committed():
        batch = batch_of(settings, n=5, size=2, user=user)
    assert (batch.name, batch.total, batch.created_by, batch.answer, batch.labelled, batch.status) == (
        "b", 5, user, False, 0, "queued")
    rows = chunks(batch)
    assert [(c.index, c.items, c.status, c.attempts) for c in rows] == [
        (0, [list(i) for i in items(5)[:2]], "pending", 0), (1, [list(i) for i in items(5)[2:4]], "pending", 0),
        (2, [list(i) for i in items(5)[4:]], "pending", 0)]
    assert all(before <= c.queued_at <= timezone.now() for c in rows)
    assert woken == [("routing.route_chunk", (c.pk,), "batches") for c in rows]
    assert progress == [{"id": batch.pk, "user": user.pk, "status": "queued", "done": 0, "total": 5, "name": "b",
                         "errors": 0}]


def test_a_batch_to_answer_uses_the_smaller_answer_chunks_and_counts_its_labels(settings, woken):
    settings.COE_BATCH_ANSWER_CHUNK_SIZE, settings.COE_BATCH_CHUNK_SIZE = 3, 100
    labelled = items(2, label="math") + items(5, start=3)
    batch = services.create_batch(items=labelled, name="n" * 250, answer=True)
    assert (batch.answer, batch.labelled, batch.total, len(batch.name)) == (True, 2, 7, 200)
    assert [len(c.items) for c in chunks(batch)] == [3, 3, 1]


def test_a_batch_to_answer_wakes_servings_task_on_commit_and_the_reconciler_wakes_it_again(settings, woken, committed):
    settings.COE_BATCH_QUEUE = "batches"
    with committed():
        answer, route = batch_of(settings, n=2, size=2, answer=True), batch_of(settings, n=2, size=2)
    assert woken == [("serving.answer_chunk", (chunks(answer)[0].pk,), "batches"),
                     ("routing.route_chunk", (chunks(route)[0].pk,), "batches")]
    woken.clear()
    services.reconcile_batches(idle_s=0)
    assert sorted(woken) == sorted([("serving.answer_chunk", (chunks(answer)[0].pk,), "batches"),
                                    ("routing.route_chunk", (chunks(route)[0].pk,), "batches")])


def test_a_chunk_to_answer_woken_as_a_plain_route_is_handed_to_serving_unrouted(settings, woken):
    """A wake-up sent before answering had its own task: routing releases the claim and wakes serving's task."""
    settings.COE_BATCH_QUEUE = "batches"
    chunk = chunks(batch_of(settings, n=2, size=2, answer=True))[0]
    token = services.claim_chunk(chunk.pk)
    assert services.route_claimed_chunk(chunk.pk, token) == "handed over"
    chunk.refresh_from_db()
    assert (chunk.status, chunk.claimed_by) == ("pending", "")
    assert not RoutingDecision.objects.filter(batch_id=chunk.batch_id).exists()
    assert woken == [("serving.answer_chunk", (chunk.pk,), "batches")]
    assert services.route_claimed_chunk(chunk.pk, token) == "handed over" and len(woken) == 1  # a lost claim sends nothing
    newer = services.claim_chunk(chunk.pk)  # serving's worker claims it: the old token must not release that claim
    assert services.route_claimed_chunk(chunk.pk, token) == "handed over" and len(woken) == 1
    chunk.refresh_from_db()
    assert (chunk.status, chunk.claimed_by) == ("claimed", newer)


def test_a_batch_needs_no_name_nor_owner_and_only_routes_by_default(settings):
    batch = services.create_batch(items=items(2))
    assert (batch.name, batch.created_by, batch.answer) == ("", None, False)


def test_nothing_is_woken_before_the_upload_commits(settings, monkeypatch):
    sent = []
    monkeypatch.setattr(services.jobs, "send", lambda *a, **kw: sent.append(a))
    batch_of(settings)
    assert sent == []


# -- claiming ------------------------------------------------------------------------------------------------

def test_a_claim_token_names_the_host_and_process_and_is_unique(settings):
    first, second = chunks(batch_of(settings, n=4))
    token = services.claim_chunk(first.pk)
    assert re.fullmatch(rf"{re.escape(socket.gethostname()[:40])}:{os.getpid()}:[0-9a-f]{{12}}", token)
    assert services.claim_chunk(second.pk) != token


def test_a_long_host_name_is_cut_to_40_characters_so_the_token_fits_its_column(settings, monkeypatch):
    chunk = chunks(batch_of(settings))[0]
    monkeypatch.setattr(services.socket, "gethostname", lambda: "h" * 60)
    token = services.claim_chunk(chunk.pk)
    assert token.startswith("h" * 40 + ":") and not token.startswith("h" * 41)
    assert len(token) <= BatchChunk._meta.get_field("claimed_by").max_length


def test_a_claim_marks_the_chunk_with_its_token_time_and_one_more_attempt(settings, monkeypatch):
    chunk = chunks(batch_of(settings))[0]
    frozen(monkeypatch, T)
    token = services.claim_chunk(chunk.pk)
    chunk.refresh_from_db()
    assert (chunk.status, chunk.claimed_by, chunk.claimed_at, chunk.attempts) == ("claimed", token, T, 1)


def test_a_claim_is_one_conditional_update_not_a_read_then_a_write(settings):
    chunk = chunks(batch_of(settings))[0]
    with CaptureQueriesContext(connection) as queries:
        assert services.claim_chunk(chunk.pk)
    assert len(queries) == 1
    sql = queries[0]["sql"]
    assert sql.startswith("UPDATE") and "status" in sql.split("WHERE", 1)[1]


def test_a_live_claim_is_kept_until_it_is_more_than_the_stale_time_old(settings, monkeypatch):
    settings.COE_CHUNK_STALE_S = 120
    chunk = chunks(batch_of(settings))[0]
    frozen(monkeypatch, T)
    first = services.claim_chunk(chunk.pk)
    frozen(monkeypatch, T + timedelta(seconds=120))
    assert services.claim_chunk(chunk.pk) is None  # exactly the stale time: still alive
    frozen(monkeypatch, T + timedelta(seconds=120) + US)
    second = services.claim_chunk(chunk.pk)
    chunk.refresh_from_db()
    assert second not in (None, first) and (chunk.claimed_by, chunk.attempts) == (second, 2)


@pytest.mark.parametrize("status", ["done", "failed"])
def test_a_finished_chunk_is_never_claimed_however_old(settings, status):
    chunk = chunks(batch_of(settings))[0]
    BatchChunk.objects.filter(pk=chunk.pk).update(status=status, claimed_at=timezone.now() - timedelta(days=1))
    assert services.claim_chunk(chunk.pk) is None
    assert services.process_chunk(chunk.pk) == "skipped"
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts) == (status, 0)


def test_claiming_one_chunk_leaves_the_others_alone(settings):
    first, second, third = chunks(batch_of(settings))
    services.claim_chunk(second.pk)
    assert [c.status for c in chunks(first.batch)] == ["pending", "claimed", "pending"]


# -- running a chunk -----------------------------------------------------------------------------------------

def test_a_chunk_run_stores_one_decision_per_prompt_with_its_line_id_and_owner(settings, user, progress):
    batch = services.create_batch(items=[Item(4, "what is 2 + 2", "q-1", "math"), Item(9, "hello there", "", "")],
                                  name="t", user=user)
    chunk = chunks(batch)[0]
    assert services.process_chunk(chunk.pk) == "done"
    rows = list(RoutingDecision.objects.filter(batch=batch).order_by("line").values_list(
        "line", "prompt", "external_id", "label", "category", "source", "user"))
    assert rows == [(4, "what is 2 + 2", "q-1", "math", "math", "batch", user.pk),
                    (9, "hello there", "", "", "general", "batch", user.pk)]
    batch.refresh_from_db()
    chunk.refresh_from_db()
    assert (batch.status, batch.done, chunk.status) == ("done", 2, "done")
    assert progress[0]["status"] == "running"  # the first chunk to start says the batch is running


def test_only_the_first_chunk_to_start_announces_the_batch_running(settings, progress):
    first, second, third = chunks(batch_of(settings))
    other = batch_of(settings)
    services.process_chunk(first.pk)
    assert Batch.objects.get(pk=other.pk).status == "queued"  # only the chunk's own batch starts running
    services.process_chunk(second.pk)
    assert [p["status"] for p in progress] == ["running"]
    assert Batch.objects.get(pk=first.batch_id).done == 4


def test_a_worker_whose_claim_was_taken_over_writes_nothing(settings):
    chunk = chunks(batch_of(settings))[0]
    old = services.claim_chunk(chunk.pk)
    BatchChunk.objects.filter(pk=chunk.pk).update(claimed_by="someone-else")
    assert services.route_claimed_chunk(chunk.pk, old) == "lost"
    chunk.refresh_from_db()
    assert (chunk.status, chunk.claimed_by) == ("claimed", "someone-else")
    assert RoutingDecision.objects.count() == 0 and Batch.objects.get(pk=chunk.batch_id).done == 0


def test_a_chunk_finished_meanwhile_writes_nothing_either(settings):
    chunk = chunks(batch_of(settings))[0]
    token = services.claim_chunk(chunk.pk)
    BatchChunk.objects.filter(pk=chunk.pk).update(status="done")
    assert services.route_claimed_chunk(chunk.pk, token) == "lost"
    assert RoutingDecision.objects.count() == 0


def test_the_last_chunk_ends_the_batch_done(settings, progress, committed):
    batch = batch_of(settings, n=4)
    first, second = chunks(batch)
    services.process_chunk(first.pk)
    assert Batch.objects.get(pk=batch.pk).status == "running"
    with committed():
        services.process_chunk(second.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.done) == ("done", 4) and batch.finished_at is not None
    assert progress[-1] == {"id": batch.pk, "user": None, "status": "done", "done": 4, "total": 4, "name": "b",
                            "errors": 0}


@pytest.fixture
def answering(monkeypatch):
    """A stand-in for batch answering that calls the heartbeat it was given (as the real one does while answers
    take long) and answers nothing; ``during`` runs before the heartbeat."""
    state = types.SimpleNamespace(during=lambda: None, claimed_at=[])

    def batch_answerer(heartbeat):
        def answer(prompts, expert_names):
            state.during()
            heartbeat()
            state.claimed_at.append(BatchChunk.objects.get(pk=state.chunk).claimed_at)
            return [(None, "") for _ in prompts], lambda decisions: None
        return answer

    monkeypatch.setattr("serving.answering.batch_answerer", batch_answerer)
    return state


def test_answering_a_chunk_renews_its_claim(settings, answering):
    batch = batch_of(settings, n=2, answer=True)
    answering.chunk = chunks(batch)[0].pk
    token = services.claim_chunk(answering.chunk)
    old = timezone.now() - timedelta(minutes=10)
    BatchChunk.objects.filter(pk=answering.chunk).update(claimed_at=old)
    before = timezone.now()
    assert serving_services.answer_claimed_chunk(answering.chunk, token) == "done"
    assert answering.claimed_at[0] >= before


def test_a_heartbeat_does_not_renew_a_claim_taken_over(settings, answering):
    batch = batch_of(settings, n=2, answer=True)
    answering.chunk = chunks(batch)[0].pk
    token = services.claim_chunk(answering.chunk)
    old = timezone.now() - timedelta(minutes=10)
    answering.during = lambda: BatchChunk.objects.filter(pk=answering.chunk).update(claimed_at=old, claimed_by="b")
    assert serving_services.answer_claimed_chunk(answering.chunk, token) == "lost"
    assert answering.claimed_at == [old]


# -- failing -------------------------------------------------------------------------------------------------

def test_a_chunk_that_cannot_be_routed_fails_naming_each_line_and_the_batch_ends_failed(settings):
    batch = batch_of(settings, n=4)
    first, second = chunks(batch)
    RouterModel.objects.update(is_active=False)
    assert services.process_chunk(first.pk) == "failed"
    batch.refresh_from_db()
    assert batch.errors == [{"line": 1, "message": "routing failed: No active router: run `python manage.py "
                                                   "train_router`."},
                            {"line": 2, "message": "routing failed: No active router: run `python manage.py "
                                                   "train_router`."}]
    assert batch.status == "running"  # the other chunk is still pending
    RouterModel.objects.update(is_active=True)
    assert services.process_chunk(second.pk) == "done"
    batch.refresh_from_db()
    assert (batch.status, batch.done, [c.status for c in chunks(batch)]) == ("failed", 2, ["failed", "done"])


def test_a_chunk_without_a_map_fails_with_that_reason(settings):
    from experts.models import MapVersion

    chunk = chunks(batch_of(settings, n=2))[0]
    MapVersion.objects.all().delete()
    assert services.process_chunk(chunk.pk) == "failed"
    assert Batch.objects.get(pk=chunk.batch_id).errors[0]["message"] == (
        "routing failed: No category→expert map exists yet.")


def test_a_failure_keeps_at_most_a_thousand_errors(settings):
    batch = batch_of(settings, n=10, size=5)
    first, second = chunks(batch)
    Batch.objects.filter(pk=batch.pk).update(errors=[{"line": 0, "message": "x"}] * 997)
    services._fail_chunk(first.pk, services.claim_chunk(first.pk), batch.pk, first.items, "boom")
    assert [e["line"] for e in Batch.objects.get(pk=batch.pk).errors[997:]] == [1, 2, 3]
    Batch.objects.filter(pk=batch.pk).update(errors=[{"line": 0, "message": "x"}] * 1003)
    services._fail_chunk(second.pk, services.claim_chunk(second.pk), batch.pk, second.items, "boom")
    assert len(Batch.objects.get(pk=batch.pk).errors) == 1003  # over the limit already: none added, none dropped


def test_a_chunk_its_worker_finished_is_never_failed_or_renewed_by_that_worker_afterwards(settings):
    batch = batch_of(settings, n=2)
    chunk = chunks(batch)[0]
    token = services.claim_chunk(chunk.pk)
    assert services.route_claimed_chunk(chunk.pk, token) == "done"
    BatchChunk.objects.filter(pk=chunk.pk).update(claimed_at=T)
    services.renew_claim(chunk.pk, token)
    services._fail_chunk(chunk.pk, token, batch.pk, chunk.items, "late")
    chunk.refresh_from_db()
    assert (chunk.status, chunk.claimed_at) == ("done", T) and Batch.objects.get(pk=batch.pk).errors == []


def test_failing_a_chunk_needs_its_claim(settings):
    batch = batch_of(settings, n=2)
    chunk = chunks(batch)[0]
    services.claim_chunk(chunk.pk)
    services._fail_chunk(chunk.pk, "not-the-token", batch.pk, chunk.items, "boom")
    chunk.refresh_from_db()
    assert chunk.status == "claimed" and Batch.objects.get(pk=batch.pk).errors == []


# -- finishing -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("statuses, finished, status", [
    (["done", "done"], True, "done"), (["done", "failed"], True, "failed"), (["failed", "failed"], True, "failed"),
    (["done", "pending"], False, "queued"), (["claimed", "done"], False, "queued"),
])
def test_a_batch_ends_when_no_chunk_is_pending_or_claimed_and_fails_if_one_failed(settings, statuses, finished,
                                                                                status):
    batch = batch_of(settings, n=4)
    for chunk, s in zip(chunks(batch), statuses):
        BatchChunk.objects.filter(pk=chunk.pk).update(status=s)
    assert services.finish_batch_if_complete(batch.pk) is finished
    batch.refresh_from_db()
    assert batch.status == status and (batch.finished_at is not None) is finished


def test_an_ended_batch_is_not_ended_again(settings, progress, committed):
    batch = batch_of(settings, n=2)
    BatchChunk.objects.filter(batch=batch).update(status="done")
    Batch.objects.filter(pk=batch.pk).update(status="failed", finished_at=T)
    with committed():
        assert services.finish_batch_if_complete(batch.pk) is True
    batch.refresh_from_db()
    assert (batch.status, batch.finished_at, progress) == ("failed", T, [])


def test_a_running_batch_ends_and_says_so_once_committed(settings, progress, committed):
    batch = batch_of(settings, n=2)
    Batch.objects.filter(pk=batch.pk).update(status="running")
    BatchChunk.objects.filter(batch=batch).update(status="done")
    with committed():
        assert services.finish_batch_if_complete(batch.pk) is True
        assert progress == []  # not before the transaction commits
    assert [p["status"] for p in progress] == ["done"]


# -- the reconciler ------------------------------------------------------------------------------------------

def test_a_pending_chunk_is_woken_once_its_wake_up_is_more_than_the_idle_time_old(settings, woken):
    settings.COE_RECONCILE_IDLE_S, settings.COE_BATCH_QUEUE = 60, "batches"
    batch = batch_of(settings, n=6)
    a, b, c = chunks(batch)
    BatchChunk.objects.filter(pk=a.pk).update(queued_at=T - timedelta(seconds=60))
    BatchChunk.objects.filter(pk=b.pk).update(queued_at=T - timedelta(seconds=60) - US)
    BatchChunk.objects.filter(pk=c.pk).update(queued_at=None)
    woken.clear()
    assert services.reconcile_batches(now=T) == {"woken": 2, "gave_up": 0, "finished": 0}
    assert sorted(woken) == sorted([("routing.route_chunk", (b.pk,), "batches"),
                                    ("routing.route_chunk", (c.pk,), "batches")])
    assert [x.queued_at for x in chunks(batch)] == [T - timedelta(seconds=60), T, T]


def test_idle_zero_wakes_every_chunk_whose_wake_up_is_in_the_past(settings, woken):
    settings.COE_RECONCILE_IDLE_S = 60
    batch = batch_of(settings, n=4)
    BatchChunk.objects.filter(batch=batch).update(queued_at=T - US)
    woken.clear()
    assert services.reconcile_batches(now=T)["woken"] == 0
    assert services.reconcile_batches(now=T, idle_s=0)["woken"] == 2


def test_a_claimed_chunk_is_woken_only_once_its_claim_is_more_than_the_stale_time_old(settings, woken):
    settings.COE_CHUNK_STALE_S = 120
    batch = batch_of(settings, n=4)
    a, b = chunks(batch)
    BatchChunk.objects.filter(pk=a.pk).update(status="claimed", claimed_at=T - timedelta(seconds=120), queued_at=None)
    BatchChunk.objects.filter(pk=b.pk).update(status="claimed", claimed_at=T - timedelta(seconds=120) - US,
                                              queued_at=None)
    woken.clear()
    assert services.reconcile_batches(now=T)["woken"] == 1 and woken == [("routing.route_chunk", (b.pk,), "celery")]


def test_a_chunk_that_used_up_its_attempts_fails_with_the_reason_and_is_not_woken(settings, woken):
    settings.COE_CHUNK_MAX_ATTEMPTS = 3
    batch = batch_of(settings, n=6)
    a, b, c = chunks(batch)
    BatchChunk.objects.filter(pk=a.pk).update(attempts=3, last_error="retrying after OperationalError")
    BatchChunk.objects.filter(pk=b.pk).update(attempts=2)
    BatchChunk.objects.filter(pk=c.pk).update(attempts=4, queued_at=None)
    woken.clear()
    report = services.reconcile_batches(idle_s=0)
    assert (report["gave_up"], report["woken"]) == (2, 1) and woken == [("routing.route_chunk", (b.pk,), "celery")]
    assert [x.status for x in chunks(batch)] == ["failed", "pending", "failed"]
    errors = Batch.objects.get(pk=batch.pk).errors
    assert [(e["line"], e["message"]) for e in errors] == [
        (1, "routing failed: gave up after 3 attempts (retrying after OperationalError)"),
        (2, "routing failed: gave up after 3 attempts (retrying after OperationalError)"),
        (5, "routing failed: gave up after 3 attempts"), (6, "routing failed: gave up after 3 attempts")]


def test_a_live_claim_is_not_given_up_nor_a_finished_chunk(settings, woken):
    settings.COE_CHUNK_MAX_ATTEMPTS = 3
    batch = batch_of(settings, n=6)
    a, b, c = chunks(batch)
    long_ago = timezone.now() - timedelta(days=1)
    BatchChunk.objects.filter(pk=a.pk).update(status="claimed", claimed_at=timezone.now(), attempts=3)
    BatchChunk.objects.filter(pk=b.pk).update(status="done", attempts=9, claimed_at=long_ago, queued_at=long_ago)
    BatchChunk.objects.filter(pk=c.pk).update(status="failed", attempts=1, claimed_at=long_ago, queued_at=long_ago)
    assert services.reconcile_batches(idle_s=0) == {"woken": 0, "gave_up": 0, "finished": 0}
    assert [x.status for x in chunks(batch)] == ["claimed", "done", "failed"] and woken == []


def test_the_reconciler_finishes_batches_with_nothing_left_and_only_those(settings, woken):
    done, running, failed_one = batch_of(settings, n=2), batch_of(settings, n=4), batch_of(settings, n=2)
    started = batch_of(settings, n=2)
    BatchChunk.objects.filter(batch__in=[done, failed_one, started]).update(status="done")
    BatchChunk.objects.filter(batch=failed_one).update(status="failed")
    Batch.objects.filter(pk=started.pk).update(status="running")
    BatchChunk.objects.filter(batch=running).update(queued_at=timezone.now())
    BatchChunk.objects.filter(pk=chunks(running)[0].pk).update(status="done")
    assert services.reconcile_batches() == {"woken": 0, "gave_up": 0, "finished": 3}
    assert [Batch.objects.get(pk=b.pk).status for b in (done, running, failed_one, started)] == [
        "done", "queued", "failed", "done"]


def test_the_chunks_given_up_are_told_apart_from_the_others_by_chunk_not_by_batch(settings, woken):
    """Ids of batches and chunks are separate sequences: a chunk may have the id of another chunk's batch."""
    settings.COE_CHUNK_MAX_ATTEMPTS = 3
    first = Batch.objects.create(pk=7000, name="a", total=1)
    second = Batch.objects.create(pk=7001, name="b", total=1)
    due = BatchChunk.objects.create(pk=7000, batch=second, index=0, items=[[1, "p", "", ""]])
    BatchChunk.objects.create(pk=7001, batch=first, index=0, items=[[1, "q", "", ""]], attempts=3)
    report = services.reconcile_batches(idle_s=0)
    assert (report["gave_up"], report["woken"], woken) == (1, 1, [("routing.route_chunk", (due.pk,), "celery")])


def test_the_reconciler_for_one_batch_leaves_the_others_alone(settings, woken):
    settings.COE_CHUNK_MAX_ATTEMPTS = 3
    mine, other = batch_of(settings, n=4), batch_of(settings, n=4)
    BatchChunk.objects.filter(batch__in=[mine, other], index=0).update(attempts=3)
    BatchChunk.objects.filter(batch__in=[mine, other], index=1).update(status="done")
    woken.clear()
    assert services.reconcile_batches(batch_id=mine.pk, idle_s=0) == {"woken": 0, "gave_up": 1, "finished": 1}
    assert [c.status for c in chunks(other)] == ["pending", "done"]
    assert Batch.objects.get(pk=other.pk).status == "queued"
    assert services.reconcile_batches(batch_id=other.pk, idle_s=0) == {"woken": 0, "gave_up": 1, "finished": 1}
    third = batch_of(settings, n=2)
    BatchChunk.objects.filter(batch=third).update(queued_at=None)
    assert services.reconcile_batches(batch_id=mine.pk, idle_s=0)["woken"] == 0


# -- retrying failed chunks ----------------------------------------------------------------------------------

def test_retrying_puts_failed_chunks_back_fresh_and_drops_only_their_errors(settings):
    batch = batch_of(settings, n=6)
    a, b, c = chunks(batch)
    BatchChunk.objects.filter(pk=a.pk).update(status="failed", attempts=5, claimed_by="w", claimed_at=T, queued_at=T,
                                              last_error="boom")
    BatchChunk.objects.filter(pk=c.pk).update(status="done")
    Batch.objects.filter(pk=batch.pk).update(status="failed", finished_at=T, errors=[
        {"line": 1, "message": "x"}, {"line": 2, "message": "x"}, {"line": 9, "message": "upload note"}])
    assert services.retry_failed_chunks(batch_id=batch.pk) == 1
    a.refresh_from_db()
    assert (a.status, a.attempts, a.claimed_by, a.claimed_at, a.queued_at, a.last_error) == (
        "pending", 0, "", None, None, "")
    batch.refresh_from_db()
    assert (batch.status, batch.finished_at, batch.errors) == ("running", None, [{"line": 9, "message": "upload note"}])
    assert [x.status for x in chunks(batch)] == ["pending", "pending", "done"]


def test_retrying_a_batch_without_failed_chunks_changes_nothing(settings):
    batch, other = batch_of(settings, n=2), batch_of(settings, n=2)
    BatchChunk.objects.filter(batch=other).update(status="failed")
    BatchChunk.objects.filter(batch=batch).update(status="done")
    Batch.objects.filter(pk=batch.pk).update(status="done", finished_at=T, errors=[{"line": 1, "message": "x"}])
    assert services.retry_failed_chunks(batch_id=batch.pk) == 0
    batch.refresh_from_db()
    assert (batch.status, batch.finished_at, batch.errors) == ("done", T, [{"line": 1, "message": "x"}])
    assert [c.status for c in chunks(other)] == ["failed"]
