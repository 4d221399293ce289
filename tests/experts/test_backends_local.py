"""TransformersBackend with a tiny GPT-2 and word-level tokenizer that the test builds and saves itself."""
import asyncio
import gc
import shutil
import threading
import time
import weakref

import pytest

from experts.backends import BackendConfig, BackendError, BreakerBoard, make_backend, open_stream
from experts.backends.local_transformers import build_prompt, load
from tests.experts.conftest import SENTENCES

MSGS = [{"role": "system", "content": "you write tiny words"}, {"role": "user", "content": "hello world"}]
def config(path, **overrides):
    return BackendConfig(**{"kind": "transformers", "expert": "tiny", "model_path": path, **overrides})


async def collect(backend, messages=MSGS, **kwargs):
    return [d async for d in backend.stream(messages, **kwargs)]


@pytest.mark.asyncio
async def test_streams_deterministically_to_the_token_limit(tiny_model):
    backend = make_backend(config(tiny_model))
    deltas = await collect(backend, max_tokens=12, temperature=0)
    text = "".join(d.text for d in deltas)
    assert len([d for d in deltas if d.text]) >= 3 and text.strip()
    assert set(text.split()) <= set(" ".join(SENTENCES).split())
    last = deltas[-1]
    assert last.finish_reason == "length"
    prompt_ids = load(tiny_model).tokenizer(build_prompt(load(tiny_model).tokenizer, MSGS))["input_ids"]
    assert last.usage == {"prompt_tokens": len(prompt_ids), "completion_tokens": 12}
    assert [d.text for d in await collect(backend, max_tokens=12, temperature=0)] == [d.text for d in deltas]


@pytest.mark.asyncio
async def test_generation_defaults_come_from_config_and_sampling_works(tiny_model):
    done = await make_backend(config(tiny_model, generation={"max_new_tokens": 4, "do_sample": False})).complete(MSGS)
    assert done.usage["completion_tokens"] == 4 and done.finish_reason == "length"
    sampled = await make_backend(config(tiny_model)).complete(MSGS, max_tokens=6, temperature=0.9, top_p=0.95)
    assert sampled.usage["completion_tokens"] <= 6


@pytest.mark.asyncio
async def test_openai_only_generation_settings_are_ignored(tiny_model):
    generation = {"seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.5, "max_tokens": 3, "top_k": 5}
    done = await make_backend(config(tiny_model, generation=generation)).complete(MSGS, temperature=0)
    assert done.usage["completion_tokens"] == 3 and done.finish_reason == "length"


@pytest.mark.asyncio
async def test_stop_strings_cut_the_text(tiny_model):
    backend = make_backend(config(tiny_model))
    full = (await backend.complete(MSGS, max_tokens=12, temperature=0)).text
    word = full.split()[2]
    cut = await backend.complete(MSGS, max_tokens=12, temperature=0, stop=[" " + word])
    assert cut.text == full[:full.find(" " + word)] and len(cut.text.split()) == 2
    assert cut.finish_reason == "stop"


@pytest.mark.asyncio
async def test_generation_does_not_block_the_event_loop_and_runs_one_at_a_time(tiny_model):
    backend = make_backend(config(tiny_model))
    alone = await collect(backend, max_tokens=40, temperature=0)  # also loads the model outside the measurement
    model = load(tiny_model).model
    generate, active, most = model.generate, 0, 0
    overlap = threading.Lock()

    def counted_generate(*args, **kwargs):  # how many generations run inside the model at once
        nonlocal active, most
        with overlap:
            active += 1
            most = max(most, active)
        try:
            return generate(*args, **kwargs)
        finally:
            with overlap:
                active -= 1

    ticks = 0
    running = True

    async def ticker():
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0.001)

    model.generate = counted_generate
    try:
        task = asyncio.create_task(ticker())
        results = await asyncio.gather(*[collect(backend, max_tokens=40, temperature=0) for _ in range(3)])
        running = False
        await task
    finally:
        del model.generate
    assert ticks > 5  # the loop kept running while the model generated
    assert most == 1  # three concurrent requests, one generation at a time (the per-model lock)
    assert all(r == alone for r in results)  # each got the whole answer it gets alone


@pytest.mark.asyncio
async def test_abandoned_stream_releases_the_model(tiny_model):
    backend = make_backend(config(tiny_model))
    stream = backend.stream(MSGS, max_tokens=200, temperature=0)
    assert (await anext(stream)).text
    await stream.aclose()  # the client went away: generation stops at the next token
    deltas = await asyncio.wait_for(collect(backend, max_tokens=3), timeout=10)
    assert deltas[-1].usage["completion_tokens"] == 3


@pytest.mark.asyncio
async def test_dispatch_over_a_local_model(tiny_model):
    opened = await open_stream([("tiny", make_backend(config(tiny_model)))], MSGS, breakers=BreakerBoard(),
                               max_tokens=5, temperature=0)
    assert opened.expert == "tiny" and opened.first.text
    assert [d async for d in opened.rest][-1].finish_reason == "length"


@pytest.mark.asyncio
async def test_a_cold_model_load_does_not_count_against_the_first_token_deadline(tiny_model, tmp_path, monkeypatch):
    from experts.backends import local_transformers

    def slow_load(path, device="cpu"):  # a big model from a slow disk
        time.sleep(1.0)
        return load(path, device)

    monkeypatch.setattr(local_transformers, "load", slow_load)
    cold = str(shutil.copytree(tiny_model, tmp_path / "cold"))  # a directory no backend has loaded yet
    backend = make_backend(config(cold, first_token_timeout_s=0.5, max_retries=0))
    opened = await open_stream([("tiny", backend)], MSGS, breakers=BreakerBoard(), max_tokens=2, temperature=0)
    assert opened.first.text and opened.ttft_ms >= 1000
    await opened.rest.aclose()


@pytest.mark.django_db
def test_a_superseded_model_is_freed_and_a_settings_edit_keeps_it(tiny_model, tmp_path):
    from experts import backend_registry
    from experts.services import save_expert

    expert = save_expert(name="gemma-2-9b-it", data={"backend": "transformers", "model_path": tiny_model})
    asyncio.run(backend_registry.backend_for(expert).prepare())
    model = weakref.ref(load(tiny_model))
    expert = save_expert(name="gemma-2-9b-it", data={"generation": {"max_new_tokens": 4}})
    backend_registry.backend_for(expert)  # same model, other settings: the new backend adopts it
    gc.collect()
    assert model() is not None and load(tiny_model) is model()
    expert = save_expert(name="gemma-2-9b-it", data={"model_path": str(shutil.copytree(tiny_model, tmp_path / "other"))})
    backend_registry.backend_for(expert)
    gc.collect()
    assert model() is None  # nothing holds the old model any more: its memory is freed


def test_prompt_uses_the_chat_template_when_there_is_one(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)
    assert build_prompt(tok, MSGS) == "system: you write tiny words\nuser: hello world\nassistant:"
    tok.chat_template = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    assert build_prompt(tok, MSGS) == "<system>you write tiny words\n<user>hello world\n<assistant>"


def test_models_are_cached_and_missing_directories_are_config_errors(tiny_model, tmp_path):
    assert load(tiny_model) is load(tiny_model)
    with pytest.raises(BackendError) as err:
        make_backend(config(str(tmp_path / "nowhere")))
    assert err.value.kind == "config" and "nowhere" in str(err.value)
    with pytest.raises(BackendError) as err:
        load(str(tmp_path))  # a directory without a model
    assert err.value.kind == "config"
