"""Batches run as "route and answer": every prompt gets exactly one decision and one expert call, answers come from
a real local OpenAI-protocol server, failures fall back and are recorded, results carry the answers."""
import json

import pytest

from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def eager(settings, django_capture_on_commit_callbacks):
    """Route and answer in the calling thread: ``with eager():`` runs the on-commit hooks that enqueue the chunks."""
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the distributed pass has a broker but no worker for this
    settings.COE_JOBS_IN_BACKGROUND = False
    settings.COE_BATCH_ANSWER_CHUNK_SIZE = 4
    return lambda: django_capture_on_commit_callbacks(execute=True)


def mapped(category):
    from experts.selectors import current_map

    return current_map().assignments[category]


def test_route_and_answer_batch(eager, active_router, user, client):
    from serving.models import ExpertCall
    from experts.services import save_expert
    from routing.models import Batch, RoutingDecision
    from routing.services import create_batch

    prompts = ["Write a Python function that reverses a linked list.", "Solve 3x + 7 = 22 for x.",
               "Compose a short poem about autumn rain.", "What caused the fall of the Western Roman Empire?",
               "Write a Rust function that parses an integer from a string.", "Integrate x^2 from 0 to 3."]
    with FakeOpenAI() as fake:
        for name in {mapped(c) for c in ("coding", "math", "writing", "humanities", "general")}:
            save_expert(name=name, data={"backend": "openai", "base_url": fake.base_url, "max_retries": 0,
                               "first_token_timeout_s": 5.0})
        with eager():
            batch = create_batch(items=[(i + 1, p, f"q{i}", "") for i, p in enumerate(prompts)], name="answers",
                                 user=user, answer=True)
    batch = Batch.objects.get(pk=batch.pk)
    assert (batch.status, batch.done, batch.answer) == ("done", 6, True)
    assert RoutingDecision.objects.filter(batch=batch).count() == 6
    calls = ExpertCall.objects.filter(decision__batch=batch)
    assert calls.count() == 6 and set(calls.values_list("status", flat=True)) == {"ok"}
    for decision in RoutingDecision.objects.filter(batch=batch):
        assert decision.answered_by_id == decision.expert_id
        assert decision.calls.get().response == "Echo: " + decision.prompt
    client.force_login(user)
    body = b"".join(client.get(f"/api/batches/{batch.pk}/results?format=jsonl").streaming_content)
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 7))
    assert all(r["answer"] == "Echo: " + r["prompt"] and r["answer_status"] == "ok" and r["answered_by"] == r["expert"]
               and r["simulated"] is False for r in rows)
    csv_text = b"".join(client.get(f"/api/batches/{batch.pk}/results?format=csv").streaming_content).decode()
    assert csv_text.splitlines()[0].endswith("answered_by,answer_status,answer_fallback_reason,answer,ttft_ms,"
                                             "total_ms,simulated")


def test_answer_failures_fall_back_and_are_recorded_per_prompt(eager, active_router, user):
    from serving.models import ExpertCall
    from experts.services import save_expert
    from routing.services import create_batch
    from tests.fakes.openai_server import closed_port

    coding, general = mapped("coding"), mapped("general")
    save_expert(name=coding, data={"backend": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "max_retries": 0})
    save_expert(name=general, data={"backend": "simulated", "sim_time_scale": 0.0, "generation": {"max_new_tokens": 5}})
    with eager():
        batch = create_batch(items=[(1, "Write a Python function that reverses a linked list.", "", "")], name="x",
                             user=user, answer=True)
    call = ExpertCall.objects.get(decision__batch=batch)
    assert (call.status, call.expert.name, call.fallback_reason, call.simulated) == ("fallback", general,
                                                                                     "connection", True)
    assert call.decision.answer_fallback_reason == "connection"
    assert call.response.startswith("[simulated ")


def test_api_batches_accepts_answer_flag(active_router, user, client, eager):
    from experts.services import save_expert

    for name in {mapped(c) for c in ("coding", "general")}:
        save_expert(name=name, data={"backend": "simulated", "sim_time_scale": 0.0, "generation": {"max_new_tokens": 3}})
    client.force_login(user)
    bad = client.post("/api/batches", {"prompts": ["hi"], "answer": "yes"}, content_type="application/json")
    assert bad.status_code == 400 and "answer" in bad.json()["error"]["errors"][0]["message"]
    with eager():
        ok = client.post("/api/batches", {"prompts": ["Write a Python function to sort a list."], "answer": True},
                         content_type="application/json")
    assert ok.status_code == 200 and ok.json()["answer"] is True
    status = client.get(f"/api/batches/{ok.json()['id']}").json()
    assert status["status"] == "done" and status["answer"] is True
