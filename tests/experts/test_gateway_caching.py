"""The chat endpoint's request path after the serving work of issue 12: one indexed version query per routed call
(a map edit or a new router takes effect on the next prompt), the routing decision and the expert call stored in
one transaction before the answer is sent (nothing is written before the expert answers), kept when the client goes
away, and token revocations seen at once by the serving process and, through the bus, by another one."""
import os

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from serving import answering
from serving.models import ExpertCall
from routing.models import RoutingDecision
from tests.fakes.openai_server import FakeOpenAI
from tests.realtime_servers import daphne, wait_until
from tests.servers import asgi_server

CODING = "Write a Python function that merges two sorted lists into one sorted list."
MESSAGES = [{"role": "user", "content": CODING}]


def statements(fn):
    with CaptureQueriesContext(connection) as ctx:
        result = fn()
    return result, [q["sql"].split()[0].upper() for q in ctx.captured_queries]


@pytest.fixture
def live():
    """The process's invalidation watch is subscribed (the expert rows are cached)."""
    from coe_site import invalidation

    wait_until(invalidation.watch.usable, 10, what="the invalidation subscription")


def warm(model, user):
    """Plan until a plan needs no more than its version query (the first ones load the router, map and rows)."""
    return wait_until(lambda: len(statements(lambda: answering.plan(model, MESSAGES, user=user))[1]) == 1, 5,
                      what="the caches to be warm")


def test_a_routed_call_reads_one_version_query_and_nothing_else(active_router, user, live):
    warm("coe", user)
    plan, sql = statements(lambda: answering.plan("coe", MESSAGES, user=user))
    assert sql == ["SELECT"]  # the router's and the map's versions, in one query; the experts' rows are cached
    assert plan.decision.pk is None and plan.decision.category == "coding"  # nothing written yet
    assert not RoutingDecision.objects.exists()
    warm("gemma-2-9b-it", user)
    named, sql = statements(lambda: answering.plan("gemma-2-9b-it", MESSAGES, user=user))
    assert sql == ["SELECT"] and named.decision is None  # the map's version (it names the fallback)
    assert plan.primary is not answering.plan("coe", MESSAGES, user=user).primary  # fresh instances each call


def test_an_expert_edit_takes_effect_on_the_next_call(active_router, user, live):
    from experts.services import save_expert

    warm("coe", user)
    chosen = answering.plan("coe", MESSAGES, user=user).primary.name
    save_expert(name=chosen, data={"sim_time_scale": 0.25})
    assert answering.plan("coe", MESSAGES, user=user).primary.sim_time_scale == 0.25


def test_an_expert_edit_announced_by_another_process_takes_effect_at_once(active_router, user, live, settings):
    from coe_site import bus
    from experts.models import Expert

    settings.COE_EXPERT_CACHE_S = 600  # the TTL cannot be what refreshes it
    warm("coe", user)
    chosen = answering.plan("coe", MESSAGES, user=user).primary.name
    Expert.objects.filter(name=chosen).update(sim_time_scale=0.5)  # no signal in this process
    assert answering.plan("coe", MESSAGES, user=user).primary.sim_time_scale != 0.5  # nobody said anything yet
    bus.publish("map", '{"event": "expert.changed", "data": {"name": "%s"}}' % chosen)  # as experts.services does
    wait_until(lambda: answering.plan("coe", MESSAGES, user=user).primary.sim_time_scale == 0.5, 5,
               what="the announced change")


def test_an_unannounced_expert_change_is_seen_within_the_ttl(active_router, user, live, settings):
    from experts.models import Expert

    settings.COE_EXPERT_CACHE_S = 0.5
    warm("coe", user)
    chosen = answering.plan("coe", MESSAGES, user=user).primary.name
    Expert.objects.filter(name=chosen).update(sim_time_scale=0.5)
    wait_until(lambda: answering.plan("coe", MESSAGES, user=user).primary.sim_time_scale == 0.5, 0.5 + 2,
               what="the TTL to end")


def test_the_version_query_reads_the_heads_as_the_selectors_read_them(active_router):
    """The same values and types (a datetime, not SQLite's text): active_router compares them to its cache's, and
    any difference would reload the router on every call."""
    from experts.models import MapVersion
    from routing.models import RouterModel
    from routing.selectors import serving_heads

    router, newest = serving_heads()
    assert router == RouterModel.objects.filter(is_active=True).values_list("pk", "version", "created_at").first()
    assert type(router[2]) is type(active_router.created_at)
    assert newest == MapVersion.objects.order_by("-number").values_list("number", "pk").first()


def test_a_map_edit_takes_effect_on_the_next_prompt(active_router, user):
    from experts.selectors import current_map
    from experts.services import publish_map

    before = answering.plan("coe", MESSAGES, user=user)
    snapshot = current_map()
    other = next(e for e in sorted(set(snapshot.assignments.values())) if e != before.primary.name)
    publish_map(base_version=snapshot.version, assignments={**snapshot.assignments, "coding": other})
    after = answering.plan("coe", MESSAGES, user=user)
    assert (after.primary.name, after.routed["map_version"]) == (other, snapshot.version + 1)


def test_a_new_router_takes_effect_on_the_next_prompt(active_router, user):
    from routing.models import RouterModel

    assert answering.plan("coe", MESSAGES, user=user).routed["router_version"] == 1
    RouterModel.objects.filter(pk=active_router.pk).update(is_active=False)
    active_router.pk, active_router.version, active_router.is_active = None, 2, True
    active_router.save()
    assert answering.plan("coe", MESSAGES, user=user).routed["router_version"] == 2


def test_the_decision_and_the_call_are_stored_in_one_transaction(active_router, user):
    plan = answering.plan("coe", MESSAGES, user=user)
    call, sql = statements(lambda: answering.record(plan, source="api", user=user, answered_by=plan.primary.name,
                                                    text="an answer", usage={"completion_tokens": 2}))
    assert sql == ["SAVEPOINT", "INSERT", "INSERT", "RELEASE"]  # one atomic block (a savepoint in the test's own)
    decision = RoutingDecision.objects.get()
    assert (call.decision_id, decision.answered_by_id, decision.user_id) == (decision.pk, plan.primary.pk, user.pk)
    assert plan.coe(plan.primary.name)["decision_id"] == decision.pk
    assert plan.completion_id == f"chatcmpl-{decision.pk}"


def test_a_call_that_cannot_be_stored_takes_its_decision_with_it(active_router, user, monkeypatch):
    plan = answering.plan("coe", MESSAGES, user=user)

    def broken(**fields):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ExpertCall.objects, "create", broken)
    with pytest.raises(RuntimeError):
        answering.record(plan, source="api", user=user, answered_by=plan.primary.name)
    assert not RoutingDecision.objects.exists()


@pytest.fixture
def server(transactional_db, active_router):
    with asgi_server() as url:
        yield url


def test_a_client_gone_before_the_answer_leaves_the_decision_and_an_aborted_call(server, user):
    from access.services import issue_token
    from experts.selectors import current_map
    from experts.services import save_expert

    token = issue_token(user=user)[0]
    with FakeOpenAI() as fake:
        fake.behaviour.update(mode="slow", delay_s=3.0)
        save_expert(name=current_map().assignments["coding"], data={"backend": "openai", "base_url": fake.base_url,
                                                          "max_retries": 0})
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server}/v1/chat/completions", headers={"Authorization": f"Bearer {token}"}, timeout=0.5,
                       json={"model": "coe", "messages": MESSAGES})
        call = wait_until(lambda: ExpertCall.objects.filter(status="aborted").first(), 10, what="the aborted call")
    decision = RoutingDecision.objects.get()
    assert (call.decision_id, decision.category, decision.user_id) == (decision.pk, "coding", user.pk)


def test_a_stream_names_a_stored_decision_in_its_first_chunk_and_records_its_call_last(server, user):
    import openai

    from access.services import issue_token
    from experts.selectors import current_map
    from experts.services import save_expert

    client = openai.OpenAI(base_url=f"{server}/v1", api_key=issue_token(user=user)[0], max_retries=0, timeout=30)
    with FakeOpenAI() as fake:
        fake.behaviour.update(tokens=["word"] * 20, per_token_delay_s=0.05)
        save_expert(name=current_map().assignments["coding"], data={"backend": "openai", "base_url": fake.base_url,
                                                          "max_retries": 0})
        stream = client.chat.completions.create(model="coe", messages=MESSAGES, stream=True)
        first = next(iter(stream))
        decision_id = first.model_extra["coe"]["decision_id"]
        assert RoutingDecision.objects.filter(pk=decision_id, category="coding").exists()  # stored, mid-stream
        assert not ExpertCall.objects.exists()
        rest = list(stream)
    assert rest and ExpertCall.objects.get().decision_id == decision_id
    assert RoutingDecision.objects.get().answered_by_id is not None


def test_a_revoked_token_stops_working_on_the_next_call(server, user):
    from access.services import issue_token, revoke_token

    token, row = issue_token(user=user)
    for _ in range(3):  # served from the cache once its subscription is up
        assert httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    revoke_token(user=user, token_id=row.pk)
    assert httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.skipif(not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL"),
                    reason="another process hears revocations through Redis: runs in CI's PostgreSQL + Redis pass")
def test_another_process_stops_a_revoked_token_once_the_bus_tells_it(transactional_db, user, tmp_path, settings):
    """Daphne in its own process caches the token (its TTL set far beyond the test: a scope taken away by SQL, which
    nobody announces, goes unseen there); this process revokes it, and the announcement on the bus
    (coe_site.ws_access, on commit) is what refuses it there."""
    import redis

    from access.services import issue_token, revoke_token
    from coe_site import bus

    token, row = issue_token(user=user)
    channel = bus.channel_prefix() + bus.CONTROL
    listeners = redis.Redis.from_url(settings.REDIS_URL)
    before = dict(listeners.pubsub_numsub(channel))[channel.encode()]
    with daphne(tmp_path, REDIS_URL=settings.REDIS_URL, COE_AUTH_CACHE_S=600) as (url, _):
        def status():
            return httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code

        assert status() == 200  # its first lookup starts its subscription
        wait_until(lambda: dict(listeners.pubsub_numsub(channel))[channel.encode()] > before, 10,
                   what="Daphne's subscription")
        assert [status() for _ in range(3)] == [200] * 3  # cached from now on
        with connection.cursor() as cursor:
            cursor.execute("UPDATE access_apitoken SET scopes = %s WHERE id = %s", ['["read"]', row.pk])
        assert status() == 200  # served from Daphne's cache: the change was not announced
        revoke_token(user=user, token_id=row.pk)
        wait_until(lambda: status() == 401, 5, what="the revocation to reach the other process")
    listeners.close()
