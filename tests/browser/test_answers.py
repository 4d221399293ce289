"""Answers in a real browser: "Route and answer" streams from /v1/chat/completions (served by the real ASGI app, so
SSE arrives chunk by chunk), the dashboard's serving panel catches up and folds live calls in, and expert backend
settings are edited in the map editor and the admin with the service's refusals shown on the form."""
import json
import time

import pytest

from tests.browser.conftest import sign_in
from tests.servers import asgi_server

CODING = "Write a Rust function that reverses a singly linked list in place."
CODER = "qwen2-72b-instruct"  # the coding expert of the default map


@pytest.fixture
def staff(db, settings):
    """A superuser (so also a backend administrator), with outbound rules that admit the upstream these tests name."""
    from django.contrib.auth import get_user_model

    settings.COE_UPSTREAM_ALLOWED_HOSTS = ["vllm.internal", "127.0.0.1"]
    return get_user_model().objects.create_superuser("boss", password="boss-pass-123")


@pytest.fixture
def asgi(transactional_db, active_router):
    from experts import backend_registry

    backend_registry._board = None  # fresh breakers for this test
    with asgi_server() as url:
        yield url
    backend_registry._board = None


def test_route_and_answer_streams_a_simulated_answer(page, asgi, user):
    from serving.models import ExpertCall
    from experts.services import save_expert

    save_expert(name=CODER, data={"backend": "simulated", "sim_time_scale": 0})
    sign_in(page, asgi)
    page.fill("#prompt", CODING)
    page.click("#answer-button")
    page.wait_for_function("document.getElementById('a-state').textContent === 'done'")
    assert page.is_visible("#a-simulated") and page.inner_text("#a-simulated") == "SIMULATED — no real model"
    assert page.inner_text("#a-category") == "coding"
    assert page.inner_text("#a-expert") == CODER
    assert not page.is_visible("#a-chosen-line")  # the chosen expert answered: no fallback line
    assert page.inner_text("#a-text").startswith(f"[simulated {CODER}")
    assert float(page.inner_text("#a-ttft")) <= float(page.inner_text("#a-total"))
    assert not page.is_visible("#a-error")
    call = ExpertCall.objects.get()
    assert (call.source, call.status, call.expert.name, call.stream, call.simulated) == \
        ("page", "ok", CODER, True, True)
    assert page.inner_text("#a-text") == call.response  # every streamed piece arrived, in order

    page.click("#route-form button[type=submit]")  # the route-only form still works beside it
    page.wait_for_selector("#decision")
    assert page.inner_text("#d-expert") == CODER


def test_answer_text_appears_while_it_streams(page, asgi, user):
    from experts.services import save_expert

    save_expert(name=CODER, data={"backend": "simulated", "sim_time_scale": 5})  # about 2 s for 64 tokens
    sign_in(page, asgi)
    page.fill("#prompt", CODING)
    page.click("#answer-button")
    partial = page.wait_for_function("""() => document.getElementById('a-state').textContent === 'answering…'
        && document.getElementById('a-text').textContent.length > 0
        && document.getElementById('a-text').textContent""").json_value()
    page.wait_for_function("document.getElementById('a-state').textContent === 'done'")
    final = page.inner_text("#a-text")
    assert final.startswith(partial) and len(final) > len(partial)


def test_answer_errors_are_shown(page, asgi, user):
    from experts.selectors import current_map
    from experts.services import save_expert
    from tests.fakes.openai_server import closed_port

    for name in {CODER, current_map().assignments["general"]}:  # the chosen expert and the fallback both down
        save_expert(name=name, data={"backend": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "max_retries": 0})
    sign_in(page, asgi)
    page.fill("#prompt", CODING)
    page.click("#answer-button")
    page.wait_for_selector("#a-error:not([hidden])")
    assert "No expert could answer" in page.inner_text("#a-error")
    assert page.inner_text("#a-state") == "failed" and page.inner_text("#a-text") == ""
    page.fill("#prompt", "   ")
    page.click("#answer-button")
    assert "must not be empty" in page.inner_text("#a-error")


def _call(status, primary, expert=None, ttft=None, total=None):
    from experts.models import Expert
    from serving.models import ExpertCall

    pool = {e.name: e for e in Expert.objects.all()}
    return ExpertCall.objects.create(requested_model="coe", primary=pool[primary], expert=pool.get(expert),
                                     status=status, ttft_ms=ttft, total_ms=total, simulated=True)


def test_dashboard_serving_panel_catches_up_then_folds_live_calls(page, live_server, login, user):
    from django.core.cache import cache

    for i in range(1, 4):
        _call("ok", CODER, CODER, ttft=10.0 * i, total=100.0 * i)
    _call("fallback", CODER, "gemma-2-9b-it", ttft=40.0, total=400.0)
    cache.set("breakers:index", ["test-proc"])
    cache.set("breakers:test-proc", {"at": time.time(), "experts": {CODER: {"state": "open", "failures": 5,
                                                                            "retry_in_s": 300}}})
    sockets = []

    def fake_socket(ws):  # no websocket server under WSGI: play the server's part
        sockets.append(ws)
        ws.send(json.dumps({"event": "hello", "data": {}}))

    try:
        login("operator", "operator-pass-123")
        page.route_web_socket("**/ws/events/**", fake_socket)
        page.goto(f"{live_server.url}/dashboard/")
        row = page.locator(f"#serving-table tr[data-expert='{CODER}']")
        row.locator("text=open").wait_for()
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == f"{CODER} simulated" and cells[2] == "4" and cells[5] == "25.0%" and cells[6] == "1"
        assert cells[3] == "20 / 30"  # TTFT p50 / p95 of the 3 answers it gave
        assert row.locator(".badge.breaker-open").count() == 1
        assert page.evaluate("Chart.getChart('chart-serving-errors').data.labels").count(f"{CODER} (simulated)") == 1

        def summary(calls, breakers=None):
            sockets[0].send(json.dumps({"event": "dashboard.summary", "data": {
                "t": time.time(), "count": 0, "batches": {}, "breakers": breakers, "calls": calls}}))

        unanswered = {"id": 10 ** 6, "expert": CODER, "primary": CODER, "status": "error", "fallback_reason": "timeout",
                      "ttft_ms": None, "total_ms": 900.0, "simulated": True, "tokens": 0, "t": time.time()}
        summary([unanswered], {CODER: {"state": "closed", "failures": 0}})
        row.locator(".badge.breaker-closed").wait_for()
        cells = row.locator("td").all_inner_texts()
        assert cells[2] == "5" and cells[5] == "40.0%"

        # A fallback item that does not name the chosen expert: the page reloads the exact numbers instead.
        fallback = _call("fallback", CODER, "gemma-2-9b-it", ttft=45.0, total=450.0)
        summary([{**unanswered, "id": fallback.pk, "expert": "gemma-2-9b-it", "primary": None, "status": "fallback"}])
        page.wait_for_function(f"""document.querySelector("#serving-table tr[data-expert='{CODER}']")
            .cells[6].textContent === '2'""")
        assert row.locator("td").all_inner_texts()[2] == "5"  # 5 stored calls; the live-only error is gone
    finally:
        cache.delete_many(["breakers:index", "breakers:test-proc"])


def test_expert_backend_form_saves_and_shows_the_service_refusal(page, live_server, login, staff, monkeypatch):
    from experts.models import Expert

    monkeypatch.setenv("COE_KEY_TEST_VLLM", "sk-never-shown-123")
    login("boss", "boss-pass-123")
    page.goto(f"{live_server.url}/map/")
    box = page.locator(f"details[id='expert-{CODER}']")
    box.locator("summary").click()
    form = box.locator("form.backend-form")
    assert not form.locator("input[name=base_url]").is_visible()  # simulated: the openai settings are hidden
    form.locator("select[name=backend]").select_option("openai")
    form.locator("input[name=base_url]").fill("")
    form.locator("button[type=submit]").click()
    refusal = page.locator(f"details[id='expert-{CODER}'] .expert-error")
    refusal.wait_for()
    assert "openai backend needs base_url" in refusal.inner_text()
    assert Expert.objects.get(name=CODER).backend == "simulated"

    form = page.locator(f"details[id='expert-{CODER}'] form.backend-form")  # shown again, open, with the input kept
    assert form.locator("select[name=backend]").input_value() == "openai"
    form.locator("input[name=base_url]").fill("http://vllm.internal:8000/v1")
    form.locator("input[name=api_key_env]").fill("COE_KEY_TEST_VLLM")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".msg")
    assert f"Saved how {CODER} is served" in page.inner_text(".messages")
    served = page.inner_text(f"#expert-table tr[data-expert='{CODER}'] .served-by")
    assert "openai" in served and "key COE_KEY_TEST_VLLM: set" in served
    assert "sk-never-shown-123" not in page.content()
    expert = Expert.objects.get(name=CODER)
    assert (expert.backend, expert.base_url, expert.api_key_env) == ("openai", "http://vllm.internal:8000/v1",
                                                                     "COE_KEY_TEST_VLLM")


def test_admin_backend_fieldsets_refusal_and_key_status(page, live_server, login, staff):
    from experts.models import AuditEntry, Expert

    expert = Expert.objects.get(name=CODER)
    login("boss", "boss-pass-123")
    page.goto(f"{live_server.url}/admin/experts/expert/{expert.pk}/change/")
    legends = page.locator("fieldset h2").all_inner_texts()
    assert {"OpenAI-compatible server", "Local transformers model", "Simulated"} <= set(legends)
    assert "API key set?" in page.inner_text("fieldset:has(#id_base_url)")
    page.select_option("#id_backend", "openai")
    page.fill("#id_base_url", "")
    page.click("input[name=_save]")
    assert "openai backend needs base_url" in page.inner_text(".errorlist")
    assert Expert.objects.get(name=CODER).backend == "simulated"
    page.fill("#id_base_url", "http://vllm.internal:8000/v1")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/experts/expert/")
    assert Expert.objects.get(name=CODER).backend == "openai"
    assert AuditEntry.objects.filter(object_name=CODER, actor=staff).count() == 1  # the dry run left no trace
