"""Each user sees their own batches, results and prompt text unless allowed to see everyone's (issue 11, item 4).
The live websocket's share of this is in tests/test_realtime_isolation.py."""
import pytest
from django.test import Client

from routing.engine.inputs import Item
from routing.models import Batch, RoutingDecision
from routing.services import create_batch, route_prompts
from tests.conftest import make_user

SECRET = "Alice's confidential merger plan for ACME, draft 3"


@pytest.fixture
def people(db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, False  # jobs inline
    return {"alice": make_user("alice", "Operators"), "bob": make_user("bob", "Operators"),
            "auditor": make_user("auditor", "Auditors"), "staff": make_user("root", is_staff=True)}


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alices_batch(people, active_router, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the chunk jobs run (inline) once it commits
        return create_batch(items=[Item(1, SECRET), Item(2, "Solve 2x + 3 = 11 for x.")], name="alice-private.txt",
                            user=people["alice"])


def test_batches_belong_to_their_uploader(people, alices_batch):
    pk = alices_batch.pk
    bob = client_for(people["bob"])
    assert bob.get(f"/batches/{pk}/").status_code == 404
    assert bob.get(f"/api/batches/{pk}").status_code == 404
    r = bob.get(f"/api/batches/{pk}/results?format=csv")
    assert r.status_code == 404 and SECRET not in r.content.decode()
    listing = bob.get("/batches/").content.decode()
    assert "alice-private.txt" not in listing and f"/batches/{pk}/" not in listing
    for who in ("alice", "auditor", "staff"):
        c = client_for(people[who])
        assert c.get(f"/batches/{pk}/").status_code == 200, who
        body = b"".join(c.get(f"/api/batches/{pk}/results?format=jsonl").streaming_content).decode()
        assert SECRET in body, who
        assert "alice-private.txt" in c.get("/batches/").content.decode(), who


def test_decisions_record_their_owner(people, alices_batch, active_router):
    assert set(RoutingDecision.objects.filter(batch=alices_batch).values_list("user", flat=True)) == \
        {people["alice"].pk}
    route_prompts(prompts=["Write a haiku about rain."], source="api", user=people["bob"])
    assert RoutingDecision.objects.filter(source="api").get().user == people["bob"]


def test_dashboard_snapshot_redacts_other_users_text(people, alices_batch, active_router):
    route_prompts(prompts=["Explain photosynthesis to a child."], source="demo")
    feed = {d["id"]: d for d in client_for(people["bob"]).get("/api/dashboard").json()["feed"]}
    alices = [d for d in feed.values() if d["user"] == people["alice"].pk]
    assert alices and all(d["prompt"] == "" and d["redacted"] for d in alices)
    assert all(d["category"] and d["expert"] for d in alices)  # what bob may know: category, expert, latency
    demo = [d for d in feed.values() if d["source"] == "demo"]
    assert demo and demo[0]["prompt"].startswith("Explain photosynthesis")  # demo prompts are public
    for who in ("alice", "auditor", "staff"):
        texts = [d["prompt"] for d in client_for(people[who]).get("/api/dashboard").json()["feed"]]
        assert any(t.startswith(SECRET[:60]) for t in texts), who


def test_a_viewer_cannot_route_upload_or_chat(people, active_router):
    viewer = client_for(make_user("stakeholder", "Viewers"))
    r = viewer.post("/api/route", {"prompt": "hi there"}, content_type="application/json")
    assert r.status_code == 403 and "operator role" in r.json()["error"]["message"]
    r = viewer.post("/api/batches", {"prompts": ["a", "b"]}, content_type="application/json")
    assert r.status_code == 403
    assert viewer.post("/batches/", {"text": "a\nb"}).status_code == 403
    assert not Batch.objects.exists() and not RoutingDecision.objects.exists()
    assert viewer.get("/dashboard/").status_code == 200 and viewer.get("/map/").status_code == 200


def test_a_viewer_cannot_chat(transactional_db, active_router):
    """Over a real server: /v1's database work runs in its own threads, which see only committed rows."""
    import httpx

    from access.services import issue_token
    from tests.servers import asgi_server

    viewer = make_user("stakeholder", "Viewers")
    token = issue_token(user=viewer, scopes=["chat"])[0]
    with asgi_server() as url:
        r = httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                       json={"model": "coe", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert not RoutingDecision.objects.exists()
