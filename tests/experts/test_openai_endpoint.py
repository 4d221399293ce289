"""The /v1 endpoint served for real, called by the official ``openai`` client, with experts answering from a real
local HTTP server that speaks the OpenAI protocol (tests/fakes/openai_server.py)."""
import json

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI, closed_port
from tests.servers import asgi_server

CODING = "Write a Python function that merges two sorted lists into one sorted list."


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def server(transactional_db, active_router, settings):
    from experts import backend_registry

    settings.COE_BREAKER_FAILURES = 3
    backend_registry._board = None  # fresh breakers with the settings of this test
    with asgi_server() as url:
        yield url
    backend_registry._board = None


@pytest.fixture
def token(user):
    from access.services import issue_token

    return issue_token(user=user.username)[0]


@pytest.fixture
def client(server, token):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=token, max_retries=0, timeout=30)


def expert_for(category):
    from experts.selectors import current_map

    return current_map().assignments[category]


def serve_with(name, **backend):
    from experts.services import save_expert

    return save_expert(name=name, data=backend)


def use_fake(name, fake, **extra):
    settings = {"max_retries": 1, "first_token_timeout_s": 2.0, "timeout_s": 10.0, **extra}
    return serve_with(name, backend="openai", base_url=fake.base_url, upstream_model="upstream-" + name, **settings)


def test_models_lists_coe_and_the_enabled_experts(client):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "coe"
    assert "qwen2-7b-instruct" in ids and "llama-3.1-70b-instruct" in ids


def test_coe_routes_and_the_chosen_expert_answers(client, fake):
    from serving.models import ExpertCall
    from routing.models import RoutingDecision

    coding_expert = expert_for("coding")
    use_fake(coding_expert, fake)
    raw = client.chat.completions.with_raw_response.create(
        model="coe", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": CODING}])
    reply = raw.parse()
    assert raw.headers["x-coe-expert"] == coding_expert and raw.headers["x-coe-category"] == "coding"
    assert reply.choices[0].message.content.startswith("Echo: Write a Python function")
    coe = reply.model_extra["coe"]
    assert (coe["category"], coe["expert"], coe["fallback_reason"], coe["simulated"]) == \
        ("coding", coding_expert, "", False)
    upstream = fake.requests[-1]
    assert upstream["body"]["model"] == "upstream-" + coding_expert
    assert upstream["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    call = ExpertCall.objects.get()
    assert (call.status, call.expert.name, call.decision_id, call.stream) == ("ok", coding_expert, coe["decision_id"],
                                                                              False)
    assert call.ttft_ms is None and call.total_ms > 0  # a whole answer was asked for: no first-token time
    assert call.completion_tokens == reply.usage.completion_tokens
    assert upstream["body"]["stream"] is False  # asked upstream the way the client asked us
    assert RoutingDecision.objects.get(pk=coe["decision_id"]).answered_by.name == coding_expert


def test_streaming_answer_with_usage(client, fake):
    from serving.models import ExpertCall

    use_fake(expert_for("coding"), fake)
    stream = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": CODING}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: " + CODING
    assert chunks[0].model_extra["coe"]["category"] == "coding"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens > 0 and not chunks[-1].choices
    call = ExpertCall.objects.get()
    assert call.stream and call.status == "ok" and call.response == text
    assert 0 < call.ttft_ms <= call.total_ms


def test_a_named_expert_is_called_directly_without_routing(client, fake):
    from routing.models import RoutingDecision

    use_fake("gemma-2-9b-it", fake)
    reply = client.chat.completions.create(model="gemma-2-9b-it", messages=[{"role": "user", "content": "Hi"}])
    assert reply.model_extra["coe"]["expert"] == "gemma-2-9b-it" and reply.model_extra["coe"]["category"] is None
    assert not RoutingDecision.objects.exists()


def test_simulated_expert_is_labelled(client):
    serve_with(expert_for("coding"), backend="simulated", sim_time_scale=0.0, generation={"max_new_tokens": 12})
    raw = client.chat.completions.with_raw_response.create(model="coe", messages=[{"role": "user", "content": CODING}])
    reply = raw.parse()
    assert raw.headers["x-coe-simulated"] == "1" and reply.model_extra["coe"]["simulated"] is True
    assert reply.choices[0].message.content.startswith("[simulated ")
    assert reply.usage.completion_tokens == 12


def test_failing_expert_falls_back_to_the_general_expert_and_the_reason_is_recorded(client, fake):
    from serving.models import ExpertCall
    from routing.models import RoutingDecision

    chosen, general = expert_for("coding"), expert_for("general")
    assert chosen != general
    use_fake(chosen, fake)
    fake.behaviour.update(mode="error", status=503)
    with FakeOpenAI() as healthy:
        use_fake(general, healthy)
        reply = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": CODING}])
    coe = reply.model_extra["coe"]
    assert (coe["expert"], coe["chosen_expert"], coe["fallback_reason"]) == (general, chosen, "upstream")
    assert reply.choices[0].message.content.startswith("Echo:")
    assert len(fake.requests) == 2  # one attempt and one retry (max_retries=1)
    call = ExpertCall.objects.get()
    assert (call.status, call.primary.name, call.expert.name, call.fallback_reason) == \
        ("fallback", chosen, general, "upstream")
    assert [a["ok"] for a in call.attempts] == [False, False, True]
    decision = RoutingDecision.objects.get(pk=coe["decision_id"])
    assert (decision.answered_by.name, decision.answer_fallback_reason) == (general, "upstream")


def test_an_expert_whose_backend_cannot_be_built_falls_back_and_says_why(client):
    from experts.models import Expert
    from serving.models import ExpertCall
    from routing.models import RoutingDecision

    chosen, general = expert_for("coding"), expert_for("general")
    Expert.objects.filter(name=chosen).update(backend="openai", base_url="")  # past save_expert's check
    raw = client.chat.completions.with_raw_response.create(model="coe", messages=[{"role": "user", "content": CODING}])
    coe = raw.parse().model_extra["coe"]
    assert (coe["expert"], coe["fallback_reason"]) == (general, "config")
    assert raw.headers["x-coe-fallback-reason"] == "config"
    call = ExpertCall.objects.get()
    assert (call.status, call.fallback_reason) == ("fallback", "config")
    assert [(a["expert"], a["error_kind"]) for a in call.attempts] == [(chosen, "config"), (general, "")]
    assert RoutingDecision.objects.get(pk=coe["decision_id"]).answer_fallback_reason == "config"


def test_breaker_opens_after_repeated_failures_and_stops_calling_the_expert(client, fake):
    from experts import backend_registry

    chosen, general = expert_for("coding"), expert_for("general")
    use_fake(chosen, fake, max_retries=0)
    serve_with(general, backend="simulated", sim_time_scale=0.0, generation={"max_new_tokens": 4})
    fake.behaviour.update(mode="error", status=500)
    for _ in range(3):  # COE_BREAKER_FAILURES = 3 in this module
        client.chat.completions.create(model="coe", messages=[{"role": "user", "content": CODING}])
    assert backend_registry.breakers().get(chosen).state == "open"
    seen = len(fake.requests)
    reply = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": CODING}])
    assert reply.model_extra["coe"]["fallback_reason"] == "breaker_open"
    assert len(fake.requests) == seen  # the open breaker spared the failing upstream


def test_slow_first_token_times_out_and_a_stream_falls_back(client, fake):
    chosen, general = expert_for("coding"), expert_for("general")
    use_fake(chosen, fake, max_retries=0, first_token_timeout_s=0.5)
    serve_with(general, backend="simulated", sim_time_scale=0.0)
    fake.behaviour.update(mode="slow_first_token", delay_s=5)
    chunks = list(client.chat.completions.create(model="coe", messages=[{"role": "user", "content": CODING}],
                                                 stream=True))
    coe = chunks[0].model_extra["coe"]
    assert (coe["fallback_reason"], coe["expert"]) == ("timeout", general)


def test_whole_answer_past_its_timeout_falls_back(client, fake):
    chosen, general = expert_for("coding"), expert_for("general")
    use_fake(chosen, fake, max_retries=0, timeout_s=0.5)
    serve_with(general, backend="simulated", sim_time_scale=0.0)
    fake.behaviour.update(mode="slow", delay_s=5)
    reply = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": CODING}])
    assert (reply.model_extra["coe"]["fallback_reason"], reply.model_extra["coe"]["expert"]) == ("timeout", general)


def test_every_expert_down_is_a_503_in_openai_format(client):
    from serving.models import ExpertCall

    dead = f"http://127.0.0.1:{closed_port()}/v1"
    for name in {expert_for("coding"), expert_for("general")}:
        serve_with(name, backend="openai", base_url=dead, max_retries=0, connect_timeout_s=1.0)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="coe", messages=[{"role": "user", "content": CODING}])
    assert err.value.status_code == 503 and err.value.body["code"] == "experts_unavailable"
    assert "connection" in err.value.body["message"]
    assert ExpertCall.objects.get().status == "error"


def test_failure_mid_stream_reaches_the_client_as_an_error(client, fake):
    from serving.models import ExpertCall

    use_fake(expert_for("coding"), fake)
    fake.behaviour.update(mode="drop_midstream", drop_after=2)
    stream = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": CODING}],
                                            stream=True)
    with pytest.raises(openai.APIError, match="failed mid-answer"):
        for _ in stream:
            pass
    call = ExpertCall.objects.get()
    assert call.status == "error" and call.response.startswith("Echo:")


def test_auth_input_and_model_errors_use_openai_error_format(server, client, user):
    anonymous = openai.OpenAI(base_url=f"{server}/v1", api_key="not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.chat.completions.create(model="coe", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="non-empty user message"):
        client.chat.completions.create(model="coe", messages=[{"role": "system", "content": "only a system turn"}])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="coe", messages=[{"role": "user", "content": "hi"}], temperature=7)


def test_malformed_requests_are_400s_in_openai_format():
    from serving.openai_format import ChatError, parse_chat_request

    hi = {"role": "user", "content": "hi"}
    for body, param in [({"messages": [hi], "stream": True, "stream_options": ["include_usage"]}, "stream_options"),
                        ({"messages": [hi], "stream_options": "yes"}, "stream_options"),
                        ({"messages": [{"role": ["user"], "content": "hi"}]}, "messages[0].role"),
                        ({"messages": [hi, {"role": {"name": "user"}, "content": "hi"}]}, "messages[1].role")]:
        with pytest.raises(ChatError) as err:
            parse_chat_request(json.dumps({"model": "coe", **body}).encode(), 10_000)
        assert (err.value.status, err.value.param) == (400, param)
        assert json.loads(err.value.response().content)["error"]["type"] == "invalid_request_error"


def test_rate_limit_per_user(client, settings):
    settings.COE_RATE_LIMIT_PER_MIN = 2
    client.models.list()
    client.models.list()
    with pytest.raises(openai.RateLimitError) as err:
        client.models.list()
    assert int(err.value.response.headers["retry-after"]) >= 1


def test_session_auth_needs_the_csrf_header(server, user):
    import httpx

    with httpx.Client(base_url=server) as http:
        login = http.get("/accounts/login/")
        csrf = login.cookies["csrftoken"]
        http.post("/accounts/login/", data={"username": "operator", "password": "operator-pass-123",
                                            "csrfmiddlewaretoken": csrf})
        body = {"model": "coe", "messages": [{"role": "user", "content": CODING}]}
        assert http.post("/v1/chat/completions", json=body).status_code == 403
        serve_with(expert_for("coding"), backend="simulated", sim_time_scale=0.0)
        ok = http.post("/v1/chat/completions", json=body, headers={"X-CSRFToken": http.cookies["csrftoken"]})
        assert ok.status_code == 200 and ok.json()["coe"]["category"] == "coding"


def test_a_local_transformers_expert_answers_through_the_endpoint(client, tiny_model):
    serve_with("gemma-2-9b-it", backend="transformers", model_path=tiny_model, generation={"do_sample": False})
    stream = client.chat.completions.create(model="gemma-2-9b-it", max_tokens=6, stream=True,
                                            messages=[{"role": "user", "content": "hello world"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and chunks[0].model_extra["coe"]["backend"] == "transformers"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_an_unreachable_cache_does_not_stop_answers(client, settings):
    """Rate limits and breaker snapshots live in the cache (Redis in production): with it down, answers go on."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{closed_port()}/0"}}
    serve_with(expert_for("coding"), backend="simulated", sim_time_scale=0.0)
    reply = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": CODING}])
    assert reply.model_extra["coe"]["category"] == "coding"
