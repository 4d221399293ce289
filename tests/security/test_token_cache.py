"""API token lookups are cached per process (access/services.py, coe_site/invalidation.py) and never outlive a change:
a revocation, deactivation or role change in this process at once; one announced by another process as soon as the
bus delivers it; an unannounced one (SQL) within COE_AUTH_CACHE_S; nothing is served while the subscription is down.
"""
import json
import types
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access.roles import can_operate
from access.services import issue_token, revoke_token, token_row
from coe_site import bus, invalidation
from tests.realtime_servers import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def live():
    """The process's invalidation watch is subscribed (caching is on)."""
    wait_until(invalidation.watch.usable, 10, what="the invalidation subscription")


def queries(fn):
    with CaptureQueriesContext(connection) as ctx:
        result = fn()
    return result, len(ctx.captured_queries)


def cached(token):
    """Look ``token`` up until a lookup needs no query (the first may race the subscription's start)."""
    return wait_until(lambda: (lambda r, n: r if n == 0 else None)(*queries(lambda: token_row(token))), 5,
                      what="a lookup from the cache")


def test_a_cached_lookup_needs_no_query_and_shares_no_instance(user, live):
    token, row = issue_token(user=user)
    first, n = queries(lambda: token_row(token))
    assert n >= 1 and first.pk == row.pk
    again = cached(token)
    assert (again.pk, again.user.pk, again.scopes, again.user.username) == (row.pk, user.pk, row.scopes, "operator")
    assert again is not first and again.user is not first.user  # nothing is shared between calls
    assert again._state.adding is False and again.user._state.db == "default"  # as loaded from the database
    assert queries(lambda: can_operate(again.user)) == (True, 0)  # the role's permissions came with it


def test_a_lookup_that_raced_an_event_is_not_kept(user, live, monkeypatch):
    import access.services as services

    token, _ = issue_token(user=user)
    snapshot = services._snapshot

    def read_while_an_event_arrives(row):
        invalidation.watch.bump(bus.CONTROL)
        return snapshot(row)

    monkeypatch.setattr(services, "_snapshot", read_while_an_event_arrives)
    token_row(token)
    assert queries(lambda: token_row(token))[1] >= 1  # not cached: it may predate the event
    monkeypatch.setattr(services, "_snapshot", snapshot)
    token_row(token)
    assert queries(lambda: token_row(token))[1] == 0


def test_revoking_in_this_process_refuses_the_next_lookup(user, live):
    token, row = issue_token(user=user)
    cached(token)
    assert revoke_token(user=user, token_id=row.pk)
    assert token_row(token) is None


def test_deactivating_the_user_refuses_the_next_lookup(user, live):
    token, _ = issue_token(user=user)
    cached(token)
    user.is_active = False
    user.save()
    assert token_row(token) is None


def test_a_role_taken_away_is_seen_by_the_next_lookup(user, live):
    token, _ = issue_token(user=user)
    assert can_operate(cached(token).user)
    user.groups.clear()  # no longer an operator
    assert not can_operate(token_row(token).user)


def test_a_cached_token_expires_on_time(user, live, monkeypatch):
    import access.services as services

    token, row = issue_token(user=user, expires="1h")
    cached(token)
    later = timezone.now() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(services, "timezone", types.SimpleNamespace(now=lambda: later))
    assert queries(lambda: token_row(token)) == (None, 0)  # refused from the cache itself


def test_an_event_from_another_process_refuses_the_next_lookup(user, live, settings):
    """Another process announces a revocation on the bus (coe_site.ws_access does so when it commits): here the row
    is deleted by SQL (no signal in this process) and the announcement is what refuses the token."""
    settings.COE_AUTH_CACHE_S = 600  # the TTL cannot be what refuses it
    token, row = issue_token(user=user)
    cached(token)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM access_apitoken WHERE id = %s", [row.pk])
    assert token_row(token) is not None  # nobody said anything yet
    bus.publish(bus.CONTROL, json.dumps({"kind": "token.deleted", "id": row.pk}))
    wait_until(lambda: token_row(token) is None, 5, what="the announced revocation")


def test_an_unannounced_change_is_seen_within_the_ttl(user, live, settings):
    settings.COE_AUTH_CACHE_S = 0.5
    token, row = issue_token(user=user)
    cached(token)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM access_apitoken WHERE id = %s", [row.pk])
    wait_until(lambda: token_row(token) is None, 0.5 + 2, what="the TTL to end")


def test_nothing_is_cached_while_the_subscription_is_down(user, live, monkeypatch):
    token, _ = issue_token(user=user)
    cached(token)
    monkeypatch.setattr(invalidation.watch, "live", False)  # as while Redis is unreachable
    assert queries(lambda: token_row(token))[1] >= 1
    assert queries(lambda: token_row(token))[1] >= 1


def test_unknown_tokens_are_never_cached(user, live):
    assert token_row("not-a-token") is None
    assert queries(lambda: token_row("not-a-token")) == (None, 1)


def test_a_new_bus_gets_a_new_subscription(user, live, settings):
    """Settings that change the bus (tests point it at their own Redis) end the old subscription and start one on
    the new bus; until it is up nothing is served from the cache, and its events are heard once it is."""
    token, row = issue_token(user=user)
    cached(token)
    for prefix in ("hperf-a:", "hperf-b:"):  # twice: the second replaces a subscription that was itself replaced
        settings.COE_WS_CHANNEL_PREFIX = prefix
        assert queries(lambda: token_row(token))[1] >= 1
        wait_until(invalidation.watch.usable, 10, what="the subscription on the new bus")
    cached(token)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM access_apitoken WHERE id = %s", [row.pk])
    bus.publish(bus.CONTROL, json.dumps({"kind": "token.deleted", "id": row.pk}))
    wait_until(lambda: token_row(token) is None, 5, what="the event on the new bus")
