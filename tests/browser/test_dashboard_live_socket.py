"""In Chromium against a real Daphne: the dashboard's socket closes when its session ends (logging out in another
tab), and the page rides out a Redis outage (the test's own redis-server, killed and restarted): a banner while live
updates are interrupted, then, without a reload, the banner goes, what was routed meanwhile appears (catch-up) and new
decisions arrive live again."""
import pytest
from django.test import override_settings

from tests.browser.conftest import sign_in
from tests.realtime_servers import daphne, redis_server

pytestmark = [pytest.mark.django_db(transaction=True)]


# Waits use locators, not wait_for_function: the pages' Content-Security-Policy forbids the eval it polls with.
def banner(page, text):
    page.locator(".live-banner", has_text=text).wait_for(state="visible")


def live(page):
    page.locator("#ws-state", has_text="live").wait_for()
    page.locator(".live-banner").wait_for(state="hidden")


def in_feed(page, text, timeout=None):
    page.locator("#feed tbody tr", has_text=text).first.wait_for(timeout=timeout)


def open_dashboard(context, url):
    dash = context.new_page()
    dash.set_default_timeout(30000)
    sign_in(dash, url)
    dash.goto(f"{url}/dashboard/")
    dash.locator("#ws-state", has_text="live").wait_for()
    return dash


def test_logging_out_in_another_tab_closes_the_dashboard_socket(browser, tmp_path, user):
    with daphne(tmp_path, COE_WS_RECHECK_S=300) as (url, _):  # a close within seconds comes from the logout itself
        context = browser.new_context()
        dash = open_dashboard(context, url)
        other = context.new_page()
        other.goto(f"{url}/")
        other.click("header form button[type=submit]")  # "Log out operator"
        other.wait_for_url("**/accounts/login/**")
        banner(dash, "Signed out")
        assert dash.inner_text("#ws-state") == "reconnecting…"
        context.close()


def test_the_dashboard_rides_out_a_redis_outage(browser, tmp_path, user, active_router):
    from routing.services import route_prompts

    with redis_server(tmp_path) as redis, daphne(tmp_path, REDIS_URL=redis.url, COE_WS_RECHECK_S=300) as (url, _), \
            override_settings(REDIS_URL=redis.url):
        context = browser.new_context()
        dash = open_dashboard(context, url)
        dash.evaluate("window.notReloaded = true")

        redis.stop()
        banner(dash, "Live updates interrupted")
        # its live event is lost
        route_prompts(prompts=["Routed while Redis was down: factor x^2 - 9."], source="api", user=user)
        redis.start()
        live(dash)
        in_feed(dash, "Routed while Redis was down")

        for n in range(10):  # live again (an event published in the publisher's 1 s pause after a failure is lost)
            route_prompts(prompts=[f"Routed after the outage, number {n}: integrate 2x."], source="api", user=user)
            try:
                in_feed(dash, f"number {n}:", timeout=2000)
                break
            except Exception:
                assert n < 9, "no live decision after Redis came back"
        assert dash.evaluate("window.notReloaded") is True
        context.close()
