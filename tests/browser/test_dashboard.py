"""In Chromium against a real Daphne (websockets): upload a file, watch the batch reach 100 % and the live
dashboard fill in; an anonymous websocket is refused.

Daphne runs in a subprocess on the test database, in embedded Celery mode (chunks routed by a background thread
inside Daphne, in-process channel layer), so the page sees the same events a Celery worker's commits produce.
Needs PostgreSQL (a subprocess cannot share SQLite's in-memory test database): runs in the distributed pass.
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.browser.conftest import sign_in
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="Daphne in a subprocess needs the PostgreSQL test database (distributed pass)"),
]
PROMPTS = [f"Solve for x: {n}x + {n + 3} = {2 * n + 10}." if n % 2 else f"Write a Python function that returns {n} squared."
           for n in range(1, 61)]


@pytest.fixture
def daphne(active_router, tmp_path):
    db = django_settings.DATABASES["default"]
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=url, COE_BATCH_CHUNK_SIZE="10")
    port = free_port()
    log = open(tmp_path / "daphne.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "coe_site.asgi:application"], cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None, (tmp_path / "daphne.log").read_text()
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:  # open websockets delay a graceful stop: the test is over, don't wait
        proc.kill()
        proc.wait(5)
    log.close()


def wait_js(page, expression, timeout=60):
    """Poll a JavaScript expression until it is truthy. Not wait_for_function: it polls with eval, which the pages'
    Content-Security-Policy forbids; page.evaluate runs through the DevTools protocol."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def open_dashboard(context, daphne):
    """Sign in and open the dashboard in a new page; returns it once its websocket is live."""
    dash = context.new_page()
    dash.set_default_timeout(60000)
    sign_in(dash, daphne)
    dash.goto(f"{daphne}/dashboard/")
    wait_js(dash, "document.getElementById('ws-state').textContent === 'live'")
    return dash


def expert_total(page):
    return page.evaluate("Chart.getChart('chart-experts').data.datasets[0].data.reduce((a, b) => a + b, 0)")


def test_upload_progress_and_live_dashboard(browser, daphne, user, tmp_path):
    context = browser.new_context()
    dash = open_dashboard(context, daphne)
    wait_js(dash, "document.getElementById('map-version').textContent === 'v1'")
    before = expert_total(dash)

    upload = context.new_page()
    upload.set_default_timeout(90000)
    upload.goto(f"{daphne}/batches/")
    assert "whole upload is rejected" in upload.inner_text("#upload-policy")
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n")
    upload.set_input_files("#upload-file", str(path))
    upload.click("#upload-form button[type=submit]")
    upload.wait_for_url("**/batches/*/")
    assert upload.inner_text("#batch-total") == "60"
    wait_js(upload, "document.getElementById('batch-percent').textContent === '100'", 90)
    assert upload.inner_text("#batch-status") == "done"
    assert upload.evaluate("document.getElementById('batch-progress').value") == 60

    wait_js(dash, f"Chart.getChart('chart-experts').data.datasets[0].data.reduce((a, b) => a + b, 0) >= {before + 60}")
    feed = dash.inner_text("#feed tbody")
    assert any(p in feed for p in PROMPTS[-5:])  # newest first: the last chunk's prompts are on top
    # bounded at 50; a summary carries at most 25 newest decisions, so under load a burst may leave a few out
    assert 25 <= dash.locator("#feed tbody tr").count() <= 50
    assert int(dash.inner_text("#seen")) >= 60  # arrived live, not from a reload
    context.close()


def test_anonymous_websocket_is_refused(browser, daphne):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{daphne}/accounts/login/")
    outcome = page.evaluate("""() => new Promise((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/ws/events/?groups=dashboard`);
        ws.onopen = () => resolve("open");
        ws.onclose = (e) => resolve(`closed ${e.code}`);
        setTimeout(() => resolve("timeout"), 15000);
    })""")
    assert outcome.startswith("closed"), outcome
    context.close()


def test_answers_from_the_openai_client_reach_the_serving_panel_live(browser, daphne, user):
    """A script asks model "coe" through the official client (Bearer token); the dashboard, already open, shows the
    call on the serving panel without a reload. Experts are simulated by default (no upstream needed)."""
    import openai

    from access.services import issue_token
    from experts.selectors import current_map
    from experts.services import save_expert

    coder = current_map().assignments["coding"]
    save_expert(name=coder, data={"backend": "simulated", "sim_time_scale": 0.0, "generation": {"max_new_tokens": 8}})
    context = browser.new_context()
    dash = open_dashboard(context, daphne)
    client = openai.OpenAI(base_url=f"{daphne}/v1", api_key=issue_token(user=user.username)[0], max_retries=0)
    for _ in range(3):
        reply = client.chat.completions.create(model="coe", messages=[{"role": "user", "content": PROMPTS[0]}])
        assert reply.model_extra["coe"]["expert"] == coder and reply.model_extra["coe"]["simulated"]
    row = dash.locator(f"#serving-table tbody tr[data-expert='{coder}']")
    row.wait_for()
    wait_js(dash, f"""(() => {{
        const tr = document.querySelector("#serving-table tbody tr[data-expert='{coder}']");
        return tr && Number(tr.cells[2].textContent) >= 3; }})()""")
    assert "simulated" in row.inner_text()
    context.close()
