"""OpenAIBackend against a real local OpenAI-compatible server (tests/fakes/openai_server.py), real sockets."""
import asyncio
import json
import time

import pytest
import pytest_asyncio

from experts.backends import BackendConfig, BackendError, BreakerBoard, make_backend, open_stream
from experts.backends.openai_http import SSEParser, aclose_shared_client
from tests.fakes.openai_server import FakeOpenAI, closed_port

KEY = "sk-test-secret-value"
MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there world"}]


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    return server


@pytest_asyncio.fixture
async def pool():
    """Close this test loop's pooled client when the test ends."""
    yield
    await aclose_shared_client()


def config(fake, **overrides) -> BackendConfig:
    values = dict(kind="openai", expert="alpha", model="m-alpha", base_url=fake.base_url, api_key=KEY, timeout_s=5.0,
                  connect_timeout_s=1.0, first_token_timeout_s=1.0, max_retries=2, backoff_s=0.001)
    return BackendConfig(**{**values, **overrides})


async def collect(backend, messages=MSGS, **kwargs):
    return [d async for d in backend.stream(messages, **kwargs)]


@pytest.mark.asyncio
async def test_streams_text_usage_and_sends_the_request(fake, pool):
    deltas = await collect(make_backend(config(fake)))
    assert "".join(d.text for d in deltas) == "Echo: hello there world"
    assert len([d for d in deltas if d.text]) == 4
    assert all(d.finish_reason is None for d in deltas[:-1])
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage == {"prompt_tokens": 5, "completion_tokens": 4}
    req = fake.requests[-1]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    assert req["body"]["stream"] is True and req["body"]["stream_options"] == {"include_usage": True}
    assert req["body"]["model"] == "m-alpha" and req["body"]["messages"] == MSGS


@pytest.mark.asyncio
async def test_sse_split_across_writes_and_keepalive_comments(fake, pool):
    fake.behaviour.update(split_writes=True, keepalive_comments=True)
    deltas = await collect(make_backend(config(fake)))
    assert "".join(d.text for d in deltas) == "Echo: hello there world"
    assert deltas[-1].usage["completion_tokens"] == 4


def test_sse_parser_events_comments_and_multiline_data():
    p = SSEParser()
    lines = [": keep-alive", "", "data: {\"a\":", "data:1}", "", "event: x", "data: [DONE]", ""]
    events = [e for e in map(p.feed, lines) if e is not None]
    assert events == ['{"a":\n1}', "[DONE]"]
    assert json.loads(events[0]) == {"a": 1}
    p.feed("data: tail")
    assert p.flush() == "tail" and p.flush() is None


@pytest.mark.asyncio
async def test_max_tokens_gives_length_and_generation_defaults_are_sent(fake, pool):
    cfg = config(fake, generation={"max_new_tokens": 2, "temperature": 0.2, "seed": 7, "do_sample": True})
    deltas = await collect(make_backend(cfg))
    assert "".join(d.text for d in deltas) == "Echo: hello"
    assert deltas[-1].finish_reason == "length"
    body = fake.requests[-1]["body"]
    assert body["max_tokens"] == 2 and body["temperature"] == 0.2 and body["seed"] == 7
    assert "do_sample" not in body
    await collect(make_backend(cfg), max_tokens=3, temperature=0.0, stop="\n")
    body = fake.requests[-1]["body"]
    assert body["max_tokens"] == 3 and body["temperature"] == 0.0 and body["stop"] == ["\n"]


@pytest.mark.asyncio
async def test_complete_uses_a_non_streamed_request(fake, pool):
    done = await make_backend(config(fake)).complete([{"role": "user", "content": "hi you"}])
    assert (done.text, done.finish_reason) == ("Echo: hi you", "stop")
    assert done.usage == {"prompt_tokens": 2, "completion_tokens": 3}
    assert fake.requests[-1]["body"]["stream"] is False


@pytest.mark.asyncio
async def test_500_is_retryable_and_dispatch_retries_until_success(fake, pool):
    fake.behaviour.update(mode="error", status=500)
    with pytest.raises(BackendError) as err:
        await collect(make_backend(config(fake)))
    assert (err.value.kind, err.value.status, err.value.retryable) == ("upstream", 500, True)

    fake.reset(mode="error", status=503, fail_times=2)
    opened = await open_stream([("alpha", make_backend(config(fake)))], MSGS, breakers=BreakerBoard())
    text = opened.first.text + "".join([d.text async for d in opened.rest])
    assert text == "Echo: hello there world"
    assert [a.ok for a in opened.attempts] == [False, False, True]
    assert opened.attempts[0].error_kind == "upstream" and opened.fallback_reason == ""
    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_429_retry_after_is_honoured_up_to_a_cap(fake, pool):
    fake.behaviour.update(mode="error", status=429, retry_after=0.05, fail_times=1)
    slept = []

    async def sleep(s):
        slept.append(s)

    opened = await open_stream([("alpha", make_backend(config(fake)))], MSGS, breakers=BreakerBoard(), sleep=sleep)
    assert opened.attempts[0].error_kind == "upstream" and slept and slept[0] >= 0.05
    fake.reset(mode="error", status=503, retry_after=3600)
    with pytest.raises(BackendError) as err:
        await collect(make_backend(config(fake)))
    assert err.value.retry_after == 10.0


@pytest.mark.asyncio
async def test_400_is_not_retried_and_the_upstream_message_is_logged_not_returned(fake, pool):
    fake.behaviour.update(mode="error", status=400, error_message="max_tokens is too large: 99999")
    with pytest.raises(BackendError) as err:
        await collect(make_backend(config(fake)))
    assert (err.value.kind, err.value.status, err.value.retryable) == ("bad_request", 400, False)
    assert "max_tokens is too large: 99999" in err.value.detail  # for the server log
    assert "too large" not in err.value.message and "HTTP 400" in err.value.message  # what a caller may read

    fake.reset(mode="error", status=400, error_message="bad temperature")
    board = BreakerBoard(failure_threshold=1)
    with pytest.raises(BackendError) as err:
        await open_stream([("alpha", make_backend(config(fake)))], MSGS, breakers=board)
    assert len(fake.requests) == 1
    assert "bad temperature" not in str(err.value) and "HTTP 400" in str(err.value)
    assert board.get("alpha").state == "closed"


@pytest.mark.asyncio
async def test_wrong_api_key_is_a_401_with_the_upstream_message_in_the_log(fake, pool):
    with pytest.raises(BackendError) as err:
        await collect(make_backend(config(fake, api_key="sk-wrong")))
    assert err.value.status == 401 and "Incorrect API key" in err.value.detail
    assert "Incorrect API key" not in err.value.message and "sk-wrong" not in str(err.value)


@pytest.mark.asyncio
async def test_refused_connection_is_a_retryable_connection_error(fake, pool):
    cfg = config(fake, base_url=f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(BackendError) as err:
        await collect(make_backend(cfg))
    assert (err.value.kind, err.value.retryable) == ("connection", True)
    with pytest.raises(BackendError) as err:
        await make_backend(cfg).complete(MSGS)
    assert err.value.kind == "connection"


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["slow_first_token", "slow", "hang"])
async def test_no_first_token_in_time_is_a_timeout(fake, pool, mode):
    fake.behaviour.update(mode=mode, delay_s=3.0)
    t0 = time.monotonic()
    with pytest.raises(BackendError) as err:
        await collect(make_backend(config(fake, first_token_timeout_s=0.2)))
    assert (err.value.kind, err.value.retryable) == ("timeout", True)
    assert time.monotonic() - t0 < 1.5


@pytest.mark.asyncio
async def test_overall_timeout_mid_stream_is_not_retryable(fake, pool):
    fake.behaviour.update(per_token_delay_s=0.15)
    got = []
    with pytest.raises(BackendError) as err:
        async for d in make_backend(config(fake, timeout_s=0.25)).stream(MSGS):
            got.append(d.text)
    assert got and got[0] == "Echo:"
    assert (err.value.kind, err.value.retryable) == ("timeout", False)


@pytest.mark.asyncio
async def test_drop_midstream_raises_from_rest(fake, pool):
    fake.behaviour.update(mode="drop_midstream", drop_after=2)
    board = BreakerBoard()
    opened = await open_stream([("alpha", make_backend(config(fake)))], MSGS, breakers=board)
    assert opened.first.text == "Echo:"
    got = []
    with pytest.raises(BackendError) as err:
        async for d in opened.rest:
            got.append(d.text)
    assert got == [" hello"]
    assert err.value.kind == "connection" and not err.value.retryable
    assert board.get("alpha").snapshot()["failures"] == 1


@pytest.mark.asyncio
async def test_connections_are_pooled_and_many_streams_run_at_once(fake, pool):
    backend = make_backend(config(fake))
    for _ in range(10):
        await collect(backend)
    before = fake.connections_opened
    for _ in range(10):
        await collect(make_backend(config(fake, expert="other")))  # new backend objects share the pool
    assert fake.connections_opened == before

    fake.behaviour.update(per_token_delay_s=0.05)
    t0 = time.monotonic()
    results = await asyncio.gather(*[collect(backend) for _ in range(60)])
    assert all("".join(d.text for d in r) == "Echo: hello there world" for r in results)
    assert time.monotonic() - t0 < 2.0  # one at a time would take 60 x 0.15 s


def test_fake_server_lists_models_and_checks_the_key(fake):
    import httpx

    ok = httpx.get(f"{fake.base_url}/models", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and ok.json()["data"][0]["id"] == fake.model
    denied = httpx.get(f"{fake.base_url}/models")
    assert denied.status_code == 401
    assert set(denied.json()["error"]) == {"message", "type", "param", "code"}


def test_fake_server_speaks_the_protocol_the_official_sdk_expects(fake):
    import openai

    client = openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0)
    chunks = list(client.chat.completions.create(model="m", messages=MSGS, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hello there world"
    assert chunks[-1].usage.completion_tokens == 4
    reply = client.chat.completions.create(model="m", messages=MSGS)
    assert reply.choices[0].message.content == "Echo: hello there world" and reply.usage.prompt_tokens == 5
    fake.behaviour.update(mode="error", status=400, error_message="nope")
    with pytest.raises(openai.BadRequestError, match="nope"):
        client.chat.completions.create(model="m", messages=MSGS)


def test_api_key_is_never_in_repr_and_bad_urls_are_config_errors(fake):
    cfg = config(fake)
    assert KEY not in repr(cfg) and KEY not in str(cfg)
    assert hash(cfg) == hash(config(fake))  # hashable, so callers may cache backends by config
    assert KEY not in repr(make_backend(cfg))
    with pytest.raises(BackendError) as err:
        make_backend(config(fake, base_url="localhost:8000/v1"))
    assert err.value.kind == "config"
    with pytest.raises(BackendError) as err:
        make_backend(BackendConfig(kind="nope", expert="x"))
    assert err.value.kind == "config"
