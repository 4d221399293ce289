"""One caller cannot open the experts' circuit breakers for everyone, exceed a token budget, or store a huge routed
text through /v1 (issue 11, items 5 and 6). Served for real, experts answering from a local OpenAI-protocol server."""
import httpx
import pytest

from access.services import issue_token
from experts.models import Expert
from routing.models import RoutingDecision
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import asgi_server

NAME = "qwen2-7b-instruct"


@pytest.fixture
def server(transactional_db, active_router, settings):
    from experts import backend_registry

    settings.COE_FALLBACK_EXPERT = NAME
    settings.COE_BREAKER_FAILURES = 2
    backend_registry._board = None
    with asgi_server() as url:
        yield url
    backend_registry._board = None


def chat(server, token, **body):
    return httpx.post(f"{server}/v1/chat/completions", timeout=60, headers={"Authorization": f"Bearer {token}"},
                      json={"model": NAME, "messages": [{"role": "user", "content": "Say hi."}], **body})


def breaker_state():
    from experts import backend_registry

    return backend_registry.breakers().get(NAME).state


def test_timeouts_of_absurd_answers_do_not_open_the_breaker_but_real_timeouts_do(server, user):
    token = issue_token(user=user, scopes=["chat"])[0]
    with FakeOpenAI() as fake:
        fake.behaviour.update(mode="slow", delay_s=3.0)
        Expert.objects.filter(name=NAME).update(backend="openai", base_url=fake.base_url, max_retries=0,
                                                timeout_s=0.5, first_token_timeout_s=0.5)
        for _ in range(4):  # a caller asking for 30,000 tokens: the timeouts are the caller's doing
            assert chat(server, token, max_tokens=30_000).status_code == 503
        assert breaker_state() == "closed"
        for _ in range(2):  # a normal request that times out: the expert's own failure
            assert chat(server, token, max_tokens=100).status_code == 503
        assert breaker_state() == "open"


def test_a_per_user_token_budget(server, user, settings):
    settings.COE_TOKENS_PER_MIN = 3000
    token = issue_token(user=user, scopes=["chat"])[0]
    Expert.objects.filter(name=NAME).update(sim_time_scale=0)
    assert chat(server, token, max_tokens=1500).status_code == 200
    assert chat(server, token, max_tokens=1400).status_code == 200
    r = chat(server, token, max_tokens=1500)
    assert r.status_code == 429 and "COE_TOKENS_PER_MIN" in r.json()["error"]["message"] and r.headers["Retry-After"]
    r = chat(server, token, max_tokens=5000)  # more than a whole minute's budget: never possible
    assert r.status_code == 400
    settings.COE_MAX_TOKENS_PER_REQUEST = 1000
    r = chat(server, issue_token(user=user, scopes=["chat"])[0], max_tokens=1001)
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"


def test_v1_routes_and_stores_at_most_the_route_limit(server, user, settings):
    settings.COE_ROUTE_MAX_BYTES = 4096
    settings.COE_TOKENS_PER_MIN = 0  # no budget here: the point is the stored text
    Expert.objects.filter(name=NAME).update(sim_time_scale=0)
    token = issue_token(user=user, scopes=["chat"])[0]
    long = "Explain this log line by line. " + "é" * 450_000  # 900 KB of two-byte characters
    r = httpx.post(f"{server}/v1/chat/completions", timeout=60, headers={"Authorization": f"Bearer {token}"},
                   json={"model": "coe", "messages": [{"role": "user", "content": long}]})
    assert r.status_code == 200, r.text
    stored = RoutingDecision.objects.get(pk=r.json()["coe"]["decision_id"]).prompt
    assert len(stored.encode()) <= 4096 and long.startswith(stored)
