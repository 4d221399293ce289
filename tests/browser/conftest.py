"""Playwright driving Debian's Chromium against pytest-django's live server."""
import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium")
        pytest.skip("Debian chromium not installed (./test.sh installs it when run as root)")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A page whose tests may evaluate script (Playwright's predicates are evaluated strings, which the product's
    Content-Security-Policy forbids); the CSP itself is checked with ``strict_page`` (tests/browser/test_xss_csp.py)."""
    context = browser.new_context(bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(20000)
    yield pg
    context.close()


def sign_in(page, url, username="operator", password="operator-pass-123"):
    """Log a user in through the real login form of the server at ``url``."""
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    return page


@pytest.fixture
def login(page, live_server):
    """Log a user in on pytest-django's live server; returns a function(username, password)."""
    return lambda username, password: sign_in(page, live_server.url, username, password)
