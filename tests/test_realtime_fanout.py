"""Fan-out in a real Daphne process on the test's own redis-server: one Redis subscription serves every socket of the
process (connections counted with CLIENT LIST do not grow with viewers), and a client that stops reading is shed
(closed) while the others receive every message in order."""
import asyncio
import contextlib
import json
import os
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from tests.realtime_servers import WsClient, daphne, redis_server

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def token_for(user):
    from access.services import issue_token

    return await sync_to_async(lambda: issue_token(user=user, scopes=["read"])[0])()


async def open_clients(url, token, n, groups="dashboard", **kw):
    async def one():
        client, status = await WsClient.open(url, groups=groups, token=token, **kw)
        assert client is not None, status
        assert (await client.recv_json())["event"] == "hello"
        return client

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_one_redis_subscription_serves_every_socket_of_a_process(tmp_path, user):
    from coe_site.bus import channel_prefix
    from coe_site.realtime import send_now

    with redis_server(tmp_path) as redis, daphne(tmp_path, REDIS_URL=redis.url) as (url, _), \
            override_settings(REDIS_URL=redis.url):
        token = await token_for(user)
        dashboard_channel = f"{channel_prefix()}dashboard"

        def daphnes():  # Daphne's connections: all but this test process's (named coe-live-*-<pid>)
            return [row for row in redis.connections() if not row["name"].endswith(f"-{os.getpid()}")]

        def subscribers():
            with contextlib.closing(redis.client()) as c:
                return dict(c.pubsub_numsub(dashboard_channel))[dashboard_channel.encode()]

        few = await open_clients(url, token, 5)
        with_few = daphnes()
        many = few + await open_clients(url, token, 75)
        with_many = daphnes()
        assert subscribers() == 1  # one subscription for the whole process, whatever the number of viewers
        assert len(with_many) == len(with_few) <= 2, with_many  # (a per-process subscription may exist besides)
        assert all(row["name"].startswith("coe-live-") for row in with_many)
        await sync_to_async(send_now)("dashboard", "fanout.test", {"n": 1})
        received = await asyncio.gather(*(c.next_event("fanout.test") for c in many))
        assert received == [{"n": 1}] * len(many)
        assert len(daphnes()) == len(with_few) and subscribers() == 1
        for c in many:
            c.close()


async def test_a_client_that_stops_reading_is_shed_and_the_others_keep_up(tmp_path, user):
    from coe_site.realtime import send_now

    count, pad = 300, "x" * 60_000  # 18 MB for each client: more than the kernel buffers can hide
    with redis_server(tmp_path) as redis, \
            daphne(tmp_path, REDIS_URL=redis.url, COE_WS_QUEUE=4, COE_WS_MAX_BUFFER=256 * 1024,
                   LOG_LEVEL="INFO") as (url, log), \
            override_settings(REDIS_URL=redis.url):
        token = await token_for(user)
        readers = await open_clients(url, token, 3, groups="hwsim")
        slow = (await open_clients(url, token, 1, groups="hwsim", rcvbuf=4096))[0]

        async def read_all(client):
            got = []
            while len(got) < count and (message := await client.recv_json(timeout=60)) is not None:
                got.append(message["data"]["n"])
            return got

        reading = [asyncio.create_task(read_all(c)) for c in readers]

        def publish():
            for n in range(count):
                send_now("hwsim", "hwsim.test", {"n": n, "pad": pad})
                time.sleep(0.005)

        publisher = threading.Thread(target=publish)
        publisher.start()
        await asyncio.to_thread(publisher.join, 120)
        got = await asyncio.wait_for(asyncio.gather(*reading), 60)
        assert got == [list(range(count))] * 3  # every message, in order, for every client that reads

        slow_got = []  # now the slow client reads what the server kept for it, until the server's close
        while (text := await slow.recv(timeout=30)) is not None:
            slow_got.append(json.loads(text)["data"]["n"])
        assert len(slow_got) < count and slow_got == list(range(len(slow_got)))
        assert slow.close_code in (4408, None)  # the close frame, or a reset once the close handshake timed out
        assert "with 4408" in log.read_text()  # the hub shed it (not a network accident)
        for c in readers:
            c.close()
