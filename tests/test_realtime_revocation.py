"""Open sockets are re-authenticated: closed with 4401 soon after their token is deleted, expires or loses the read
scope, their session ends, or their user is deactivated — at once through the announced event (the periodic re-check
is set far away in those tests), and within the re-check period when the change bypassed the signals (raw SQL)."""
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from tests.conftest import make_user

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
ORIGIN = (b"origin", b"http://127.0.0.1")
NEVER = 300  # a re-check period no test waits for: a close within seconds came from the announced event


def application():
    from coe_site.asgi import application

    return application


async def open_socket(headers, groups="dashboard"):
    comm = WebsocketCommunicator(await sync_to_async(application)(), f"/ws/events/?groups={groups}",
                                 headers=[ORIGIN, *headers])
    connected, code = await comm.connect(timeout=5)
    assert connected, code
    assert (await comm.receive_json_from(timeout=5))["event"] == "hello"
    return comm


async def token_socket(user, **fields):
    from access.models import ApiToken
    from access.services import issue_token

    def issue():
        token, row = issue_token(user=user, scopes=["read"])
        if fields:
            ApiToken.objects.filter(pk=row.pk).update(**fields)  # no signal: as if set before this test
        return token, row

    token, row = await sync_to_async(issue)()
    return await open_socket([(b"authorization", f"Bearer {token}".encode())]), row


async def close_code(comm, timeout):
    """(code, seconds) of the server's close; fails if none comes within ``timeout`` (one wait: the communicator
    cancels the application when a wait times out)."""
    start = time.monotonic()
    while True:
        out = await comm.receive_output(timeout=max(0.05, timeout - (time.monotonic() - start)))
        if out["type"] == "websocket.close":
            return out.get("code"), time.monotonic() - start


@override_settings(COE_WS_RECHECK_S=NEVER)
async def test_revoking_a_token_closes_its_socket_at_once(user):
    from access.services import revoke_token

    comm, row = await token_socket(user)
    await sync_to_async(revoke_token)(user=user, token_id=row.pk)
    code, _ = await close_code(comm, 5)
    assert code == 4401


@override_settings(COE_WS_RECHECK_S=0.5)
async def test_a_token_deleted_behind_the_signals_is_caught_by_the_periodic_recheck(user):
    from django.db import connection

    comm, row = await token_socket(user)

    def delete_by_sql():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM access_apitoken WHERE id = %s", [row.pk])

    await sync_to_async(delete_by_sql)()
    code, seconds = await close_code(comm, 0.5 + 4)
    assert code == 4401


@override_settings(COE_WS_RECHECK_S=NEVER)
async def test_a_socket_closes_when_its_token_expires(user):
    from datetime import timedelta

    from django.utils import timezone

    comm, _ = await token_socket(user, expires_at=timezone.now() + timedelta(seconds=2))
    code, seconds = await close_code(comm, 8)
    assert code == 4401 and seconds >= 1.0  # at its expiry, not at once


@override_settings(COE_WS_RECHECK_S=NEVER)
async def test_a_token_that_loses_the_read_scope_closes_its_socket(user):
    comm, row = await token_socket(user)

    def narrow():
        row.scopes = ["route"]
        row.save()

    await sync_to_async(narrow)()
    code, _ = await close_code(comm, 5)
    assert code == 4401


@override_settings(COE_WS_RECHECK_S=NEVER)
async def test_logging_out_closes_the_browser_socket():
    from django.conf import settings
    from django.test import Client

    def log_in():
        client = Client()
        client.force_login(make_user("browser-user", "Operators"))
        return client

    client = await sync_to_async(log_in)()
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    comm = await open_socket([(b"cookie", cookie.encode())])
    await sync_to_async(client.logout)()
    code, _ = await close_code(comm, 5)
    assert code == 4401
    again = WebsocketCommunicator(await sync_to_async(application)(), "/ws/events/",
                                  headers=[ORIGIN, (b"cookie", cookie.encode())])
    assert (await again.connect(timeout=5)) == (False, 4401)  # and the old cookie no longer opens one


@override_settings(COE_WS_RECHECK_S=0.5)
async def test_an_expired_session_is_caught_by_the_periodic_recheck():
    from django.conf import settings
    from django.contrib.sessions.models import Session
    from django.test import Client
    from django.utils import timezone

    def log_in():
        client = Client()
        client.force_login(make_user("browser-user", "Operators"))
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    key = await sync_to_async(log_in)()
    comm = await open_socket([(b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())])
    await sync_to_async(lambda: Session.objects.filter(pk=key).update(expire_date=timezone.now()))()
    code, _ = await close_code(comm, 0.5 + 4)
    assert code == 4401


@override_settings(COE_WS_RECHECK_S=NEVER)
async def test_deactivating_a_user_closes_their_sockets(user):
    comm, _ = await token_socket(user)

    def deactivate():
        user.is_active = False
        user.save()

    await sync_to_async(deactivate)()
    code, _ = await close_code(comm, 5)
    assert code == 4401


@override_settings(COE_WS_RECHECK_S=NEVER)
async def test_losing_the_auditor_role_stops_showing_others_prompts(active_router):
    from django.contrib.auth.models import Group

    from routing.services import route_prompts

    owner, auditor = await sync_to_async(lambda: (make_user("owner", "Operators"), make_user("aud", "Auditors")))()
    comm, _ = await token_socket(auditor)

    async def next_prompt(text):
        decision_id = (await sync_to_async(route_prompts)(prompts=[text], source="api", user=owner))[0]["id"]
        while True:
            message = await comm.receive_json_from(timeout=10)
            for d in message["data"].get("decisions", []) if message["event"] == "dashboard.summary" else []:
                if d["id"] == decision_id:
                    return d["prompt"]

    assert await next_prompt("Owner asks: solve 2x + 3 = 11.") == "Owner asks: solve 2x + 3 = 11."
    await sync_to_async(lambda: auditor.groups.remove(Group.objects.get(name="Auditors")))()
    deadline = time.monotonic() + 10
    while await next_prompt("Owner asks again: solve 3x = 12.") != "":  # the re-check runs as the event arrives
        assert time.monotonic() < deadline, "the auditor still reads others' prompts after losing the role"
    await comm.disconnect()
