"""The websocket endpoint: anonymous refused, session or bearer token accepted, events arrive after commit."""
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
ORIGIN = (b"origin", b"http://127.0.0.1")


def application():
    from coe_site.asgi import application  # imported inside a test: start-up checks the (test) database

    return application


async def connect(path="/ws/events/?groups=dashboard", headers=()):
    app = await sync_to_async(application)()
    comm = WebsocketCommunicator(app, path, headers=[ORIGIN, *headers])
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


async def test_anonymous_is_refused():
    comm, connected, code = await connect()
    assert not connected and code == 4401


async def test_bad_token_is_refused():
    comm, connected, code = await connect(headers=[(b"authorization", b"Bearer wrong")])
    assert not connected and code == 4401


async def test_foreign_origin_is_refused(user):
    from access.services import issue_token

    token = await sync_to_async(lambda: issue_token(user=user.username)[0])()
    comm = WebsocketCommunicator(await sync_to_async(application)(), "/ws/events/",
                                 headers=[(b"origin", b"http://evil.example"),
                                          (b"authorization", f"Bearer {token}".encode())])
    connected, _ = await comm.connect(timeout=5)
    assert not connected


async def test_token_client_receives_events_published_on_commit(user):
    from django.db import transaction

    from access.services import issue_token
    from coe_site.realtime import publish

    token = await sync_to_async(lambda: issue_token(user=user.username)[0])()
    comm, connected, _ = await connect("/ws/events/?groups=dashboard,map",
                                       headers=[(b"authorization", f"Bearer {token}".encode())])
    assert connected
    hello = await comm.receive_json_from(timeout=5)
    assert hello == {"event": "hello", "data": {"user": "operator", "groups": ["dashboard", "map"], "live": True}}

    def publish_in_transaction():
        import numpy as np

        with transaction.atomic():
            publish("map", "map.changed", {"version": np.int64(7)})
            assert transaction.get_connection().run_on_commit  # held until commit

    await sync_to_async(publish_in_transaction)()
    assert await comm.receive_json_from(timeout=5) == {"event": "map.changed", "data": {"version": 7}}
    await comm.disconnect()


async def test_unknown_group_is_refused(user):
    from access.services import issue_token

    token = await sync_to_async(lambda: issue_token(user=user.username)[0])()
    comm, connected, code = await connect("/ws/events/?groups=secrets",
                                          headers=[(b"authorization", f"Bearer {token}".encode())])
    assert not connected and code == 4400


async def test_publishing_a_map_version_notifies_map_and_dashboard_groups(user):
    from access.services import issue_token
    from experts.selectors import current_map
    from experts.services import publish_map

    token = await sync_to_async(lambda: issue_token(user=user.username)[0])()
    comm, connected, _ = await connect("/ws/events/?groups=map,dashboard",
                                       headers=[(b"authorization", f"Bearer {token}".encode())])
    assert connected
    await comm.receive_json_from(timeout=5)  # hello

    def publish():
        snap = current_map()
        return publish_map(base_version=snap.version, assignments={**snap.assignments, "math": "gemma-2-9b-it"}, note="live", user=user).number

    number = await sync_to_async(publish)()
    events = [await comm.receive_json_from(timeout=5) for _ in range(2)]
    assert [e["event"] for e in events] == ["map.changed", "map.changed"]  # once per joined group
    assert all(e["data"]["version"] == number and e["data"]["assignments"]["math"] == "gemma-2-9b-it"
               and e["data"]["author"] == "operator" for e in events)
    await comm.disconnect()
