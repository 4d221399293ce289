"""Stored XSS and the Content-Security-Policy, in a real browser (issue 11, item 3).

A payload is planted in every field a user can write — prompts, batch names, map notes, category descriptions and
seed prompts, expert fields, machine names, designer table and model names, token names — and every page that shows
them is visited in a browser that *enforces* the CSP. Each page must show the payload as text, create none of its
elements, run none of its script, and report no CSP violation of its own (an inline script or style would).
"""
import pytest

from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOAD = '<img src=x onerror="window.__xss=1" data-xss=1><script data-xss>window.__xss=1</script>"\'><svg data-xss onload=window.__xss=1>'
SHOWN = "<img src=x"  # what a page shows when it renders the payload as text


@pytest.fixture
def strict_page(browser):
    """A page under the product's CSP (no bypass), recording every violation and console error."""
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(20000)
    pg.violations = []
    pg.on("console", lambda m: pg.violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield pg
    context.close()


@pytest.fixture
def planted(active_router, settings, live_server):
    """Payloads everywhere a user can write, through the same services the pages and APIs use."""
    from access.services import issue_token
    from designer.services import import_table
    from experts.selectors import current_version_number
    from experts.services import publish_map, save_expert
    from hwsim.engine import get_machine
    from hwsim.services import create_run
    from experts.category_services import add_category
    from routing.engine.inputs import Item
    from routing.services import create_batch, route_prompts

    settings.CELERY_TASK_ALWAYS_EAGER, settings.COE_JOBS_IN_BACKGROUND = True, False  # jobs inline
    admin = make_user("root", is_staff=True, is_superuser=True)
    route_prompts(prompts=[f"Solve 2x + 3 = 11 {PAYLOAD}"], source="page", user=admin)
    batch = create_batch(items=[Item(1, f"Write a poem {PAYLOAD}"), Item(2, "Integrate x^2 dx.")], name=PAYLOAD[:200],
                         user=admin)
    add_category(name="xss-cat", expert="qwen2-7b-instruct", base_version=current_version_number(), description=PAYLOAD,
                 seed_prompts=[f"seed {PAYLOAD}"], user=admin)
    snap_assign = __import__("experts.selectors", fromlist=["current_map"]).current_map().assignments
    publish_map(base_version=current_version_number(), assignments=dict(snap_assign), note=PAYLOAD, user=admin)
    save_expert(name="qwen2-7b-instruct", data={"description": PAYLOAD, "model_id": PAYLOAD[:200]}, user=admin)
    machine = {**get_machine("sn40l-8").to_dict(), "name": PAYLOAD[:60]}
    run = create_run(raw={"machine": {"custom": machine}, "experts": {"source": "uniform", "count": 4,
                                                                       "params": 7e9},
                          "workload": {"kind": "synthetic", "requests": 50}}, user=admin)
    table = import_table(name=PAYLOAD[:120], kind="category",
                         scores=("s.csv", f'category,model,score\ncoding,"{PAYLOAD}",5\n'.encode()),
                         models=("m.csv", f'model,total_params\n"{PAYLOAD}",7\n'.encode()), user=admin)
    issue_token(user=admin, name=PAYLOAD[:100])
    return {"admin": admin, "batch": batch, "run": run, "table": table}


def sign_in(page, url, user):
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", f"{user.username}-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_payloads_render_as_text_everywhere_under_the_csp(strict_page, planted, live_server):
    url = live_server.url
    page = strict_page
    sign_in(page, url, planted["admin"])
    pages = {
        "/": "home", "/dashboard/": "dashboard", "/batches/": "batch list",
        f"/batches/{planted['batch'].pk}/": "batch", "/map/": "map editor", "/map/history/": "history",
        "/map/audit/": "audit", f"/hwsim/runs/{planted['run'].pk}/": "simulator run", "/hwsim/": "simulator",
        f"/designer/{planted['table'].pk}/": "designer table", "/designer/": "designer", "/account/tokens/": "tokens",
    }
    for path, what in pages.items():
        response = page.goto(f"{url}{path}")
        assert response.status == 200, what
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp, what
        page.wait_for_load_state("networkidle")
        assert page.locator("[data-xss]").count() == 0, f"{what}: a planted element was created"
        assert page.evaluate("() => window.__xss") is None, f"{what}: planted script ran"
        if what not in ("home", "simulator", "designer", "dashboard"):  # pages that show a planted field at load
            # (the dashboard's feed arrives over the websocket, which this WSGI live server does not serve)
            assert SHOWN in page.inner_text("body"), f"{what}: the payload is not shown as text"
    assert page.violations == [], page.violations


def test_admin_pages_work_under_the_csp(strict_page, planted, live_server):
    url = live_server.url
    sign_in(strict_page, url, planted["admin"])
    for path in ("/admin/", "/admin/experts/expert/", "/admin/experts/mapversion/add/", "/admin/access/apitoken/",
                 "/admin/experts/category/"):
        response = strict_page.goto(f"{url}{path}")
        assert response.status == 200, path
        assert strict_page.locator("[data-xss]").count() == 0, path
    scripts = [v for v in strict_page.violations if "script-src" in v]
    assert scripts == [], scripts
