"""Per-user isolation on the live feed: each socket gets what its user may read — their own prompts and batch names,
demo traffic, and everything for auditors (access.view_all_traffic) and staff — exactly as GET /api/dashboard redacts
it; payload variants are rendered once per message, not once per socket."""
import asyncio
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from tests.conftest import make_user

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
ORIGIN = (b"origin", b"http://127.0.0.1")


def application():
    from coe_site.asgi import application  # imported inside a test: start-up checks the (test) database

    return application


async def connect(token, groups="dashboard"):
    comm = WebsocketCommunicator(await sync_to_async(application)(), f"/ws/events/?groups={groups}",
                                 headers=[ORIGIN, (b"authorization", f"Bearer {token}".encode())])
    connected, code = await comm.connect(timeout=5)
    assert connected, code
    assert (await comm.receive_json_from(timeout=5))["event"] == "hello"
    return comm


async def collect(comm, decision_ids, batch_id, timeout=15):
    """Fold dashboard summaries until the socket has seen every decision in ``decision_ids`` and the batch."""
    decisions, batches = {}, {}
    deadline = time.monotonic() + timeout
    while not (set(decision_ids) <= set(decisions) and str(batch_id) in batches):
        message = await comm.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
        if message["event"] == "dashboard.summary":
            decisions.update({d["id"]: d for d in message["data"]["decisions"]})
            batches.update(message["data"]["batches"])
    return decisions, batches


async def test_each_socket_sees_only_what_its_user_may_read(active_router):
    from access.services import issue_token
    from routing.engine.inputs import Item
    from dashboard.selectors import dashboard_snapshot
    from routing.services import create_batch, route_prompts

    def users_and_tokens():
        people = {"alice": make_user("alice", "Operators"), "bob": make_user("bob", "Operators"),
                  "audrey": make_user("audrey", "Auditors"), "stella": make_user("stella", is_staff=True)}
        return people, {name: issue_token(user=u, scopes=["read"])[0] for name, u in people.items()}

    people, tokens = await sync_to_async(users_and_tokens)()
    sockets = {name: await connect(token) for name, token in tokens.items()}

    def traffic():
        alice = route_prompts(prompts=["Alice asks: integrate x squared from zero to one."], source="api",
                              user=people["alice"])
        bob = route_prompts(prompts=["Bob asks: write a Python function that reverses a list."], source="page",
                            user=people["bob"])
        demo = route_prompts(prompts=["A demo prompt: what is the capital of France?"], source="demo")
        batch = create_batch(items=[Item(1, "Alice's batch prompt about prime numbers.", "", "")],
                             name="alice-quarterly-secrets", user=people["alice"])
        return alice[0]["id"], bob[0]["id"], demo[0]["id"], batch.pk

    alice_id, bob_id, demo_id, batch_id = await sync_to_async(traffic)()
    seen = {name: await collect(comm, [alice_id, bob_id, demo_id], batch_id) for name, comm in sockets.items()}

    def text(name, decision_id):
        d = seen[name][0][decision_id]
        return "" if d.get("redacted") else d["prompt"]

    assert text("alice", alice_id).startswith("Alice asks") and text("alice", bob_id) == ""
    assert text("bob", bob_id).startswith("Bob asks") and text("bob", alice_id) == ""
    assert seen["bob"][0][alice_id]["prompt"] == "" and seen["bob"][0][alice_id]["redacted"] is True
    for everyone in ("audrey", "stella"):
        assert text(everyone, alice_id).startswith("Alice asks") and text(everyone, bob_id).startswith("Bob asks")
    assert all(text(name, demo_id).startswith("A demo prompt") for name in sockets)  # demo traffic is public
    # category, expert and latency stay visible to everyone
    assert seen["bob"][0][alice_id]["category"] == seen["alice"][0][alice_id]["category"]
    assert seen["bob"][0][alice_id]["expert"] and seen["bob"][0][alice_id]["latency_ms"] >= 0
    # batch names: the uploader, auditors and staff read it; others see it blanked
    names = {name: seen[name][1][str(batch_id)] for name in sockets}
    assert names["alice"]["name"] == names["audrey"]["name"] == names["stella"]["name"] == "alice-quarterly-secrets"
    assert names["bob"]["name"] == "" and names["bob"]["redacted"] is True

    # the live path redacts exactly as the catch-up read does
    snapshot = await sync_to_async(dashboard_snapshot)(people["bob"])
    caught_up = {d["id"]: d for d in snapshot["feed"]}
    for decision_id in (alice_id, bob_id, demo_id):
        live = seen["bob"][0][decision_id]
        assert {k: live.get(k) for k in ("prompt", "redacted", "user", "source", "category")} == \
               {k: caught_up[decision_id].get(k) for k in ("prompt", "redacted", "user", "source", "category")}
    for comm in sockets.values():
        await comm.disconnect()


class FakeSocket:
    def __init__(self, viewer):
        from coe_site.fanout import Socket

        self.out = []

        async def send(message):
            self.out.append(message)

        self.sock = Socket(send, ["dashboard"], viewer)


async def test_variants_are_rendered_once_per_message_not_once_per_socket():
    from coe_site.bus import LocalBus
    from coe_site.fanout import Hub
    from coe_site.ws_access import Viewer, summary_lens

    renders = []

    def counting_lens(data):
        key_of, render = summary_lens(data)
        return key_of, lambda key: renders.append(key) or render(key)

    hub = Hub(LocalBus(), ["dashboard"], lenses={"dashboard.summary": counting_lens})
    viewers = [Viewer(user_id=1, username="owner", view_all=False)] * 10 + \
              [Viewer(user_id=2, username="viewer", view_all=False)] * 10 + \
              [Viewer(user_id=3, username="auditor", view_all=True)] * 10 + \
              [Viewer(user_id=4, username="viewer2", view_all=False)] * 10
    fakes = [FakeSocket(v) for v in viewers]
    for f in fakes:
        hub.attach(f.sock)

    def summary(*items):
        return json.dumps({"event": "dashboard.summary", "data": {"count": len(items), "decisions": list(items),
                                                                   "batches": {}}})

    private = {"id": 1, "user": 1, "source": "api", "prompt": "owner's secret"}
    public = {"id": 2, "user": None, "source": "demo", "prompt": "a demo prompt"}
    await hub.broadcast("dashboard", summary(private, public))
    await hub.broadcast("dashboard", summary(public))

    async def delivered():
        while any(len(f.out) < 2 for f in fakes):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(delivered(), 5)
    assert sorted(map(str, renders)) == ["1", "all", "all", "others"]  # full, redacted, the owner's; then one
    prompts = {v.username: [d["prompt"] for d in json.loads(f.out[0]["text"])["data"]["decisions"]]
               for v, f in zip(viewers, fakes)}
    assert prompts == {"owner": ["owner's secret", "a demo prompt"], "viewer": ["", "a demo prompt"],
                       "auditor": ["owner's secret", "a demo prompt"], "viewer2": ["", "a demo prompt"]}


async def test_the_bulk_view_all_check_agrees_with_access_roles():
    from django.contrib.auth.models import Permission

    from access.roles import can_view_all
    from coe_site.ws_access import Viewer, check_viewers

    def people():
        direct = make_user("direct", "Viewers")
        direct.user_permissions.add(Permission.objects.get(codename="view_all_traffic"))
        return [make_user("viewer", "Viewers"), make_user("op", "Operators"), make_user("aud", "Auditors"), direct,
                make_user("staff", is_staff=True), make_user("root", is_superuser=True),
                make_user("gone", "Auditors", is_active=False)]

    def compare():
        users = people()
        verdicts = check_viewers([Viewer(user_id=u.pk, username=u.username, view_all=None) for u in users])
        fresh = {u.pk: type(u).objects.get(pk=u.pk) for u in users}  # no permission cache from set-up
        return {v.username: verdicts[v] for v in verdicts}, {u.username: can_view_all(fresh[u.pk]) for u in users}

    bulk, roles = await sync_to_async(compare)()
    assert bulk == {**roles, "gone": None}  # an inactive user's sockets close
    assert roles == {"viewer": False, "op": False, "aud": True, "direct": True, "staff": True, "root": True,
                     "gone": False}
