"""Redis goes away while a dashboard socket is open (the test's own redis-server, killed by PID): the socket stays
open and is told live updates are interrupted, writes go on without stalling, GET /api/dashboard still answers JSON,
and after Redis returns the process resubscribes by itself, the socket gets a ``resync`` (the page re-fetches the
snapshot, which holds what was routed meanwhile) and new events flow again."""
import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from tests.realtime_servers import redis_server

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
ORIGIN = (b"origin", b"http://127.0.0.1")


def application():
    from coe_site.asgi import application

    return application


async def next_event(comm, name, timeout):
    deadline = time.monotonic() + timeout
    while True:
        message = await comm.receive_json_from(timeout=max(0.05, deadline - time.monotonic()))
        if message["event"] == name:
            return message["data"]


async def test_a_socket_survives_a_redis_outage_and_catches_up(tmp_path, user, active_router):
    from django.test import Client

    from access.services import issue_token
    from coe_site.realtime import send_now
    from routing.services import route_prompts

    with redis_server(tmp_path) as redis, override_settings(
            REDIS_URL=redis.url, COE_WS_RECHECK_S=300,
            CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis.url,
                                "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}):
        token = await sync_to_async(lambda: issue_token(user=user, scopes=["read"])[0])()
        comm = WebsocketCommunicator(await sync_to_async(application)(), "/ws/events/?groups=dashboard,map",
                                     headers=[ORIGIN, (b"authorization", f"Bearer {token}".encode())])
        assert (await comm.connect(timeout=5))[0]
        assert (await comm.receive_json_from(timeout=5))["data"]["live"] is True
        await sync_to_async(send_now)("map", "map.changed", {"version": 1})
        assert await next_event(comm, "map.changed", 5) == {"version": 1}  # through this redis-server

        redis.stop()
        assert await next_event(comm, "stream", 15) == {"state": "interrupted"}  # told, not closed
        started = time.monotonic()
        during = (await sync_to_async(route_prompts)(prompts=["Routed during the outage: factor x^2 - 9."],
                                                     source="api", user=user))[0]["id"]
        assert time.monotonic() - started < 5  # the write is not held up by the dead bus
        client = Client()
        await sync_to_async(client.force_login)(user)
        response = await sync_to_async(client.get)("/api/dashboard")
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        assert "unreachable" in response.json()["serving"]["unavailable"]

        redis.start()  # same port, empty: every subscription is gone
        await next_event(comm, "resync", 20)  # the process resubscribed by itself
        snapshot = (await sync_to_async(client.get)("/api/dashboard")).json()
        assert during in [d["id"] for d in snapshot["feed"]] and "unavailable" not in snapshot["serving"]

        routed, stop = [], asyncio.Event()

        async def keep_routing():  # new events flow again (one published in the publisher's 1 s pause is lost)
            while not stop.is_set():
                routed.extend(d["id"] for d in await sync_to_async(route_prompts)(
                    prompts=["After the outage: integrate 2x."], source="api", user=user))
                await asyncio.sleep(0.3)

        router = asyncio.create_task(keep_routing())
        message = await next_event(comm, "dashboard.summary", 15)
        stop.set()
        await router
        assert message["decisions"] and all(d["id"] in routed for d in message["decisions"])
        await comm.disconnect()
