"""The first page in a real browser: login, route one prompt, see the decision."""
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_required(page, live_server):
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url


def test_route_a_prompt_and_see_the_decision(login, user, active_router, live_server):
    page = login("operator", "operator-pass-123")
    assert page.inner_text("#map-version") == "v1"
    assert page.inner_text("#router-version") == "v1"
    assert "general" in page.inner_text("#map-table")
    page.fill("#prompt", "Write a Rust function that reverses a singly linked list in place.")
    page.click("#route-form button[type=submit]")
    page.wait_for_selector("#decision")
    assert page.inner_text("#d-category") == "coding"
    assert page.inner_text("#d-expert") == "qwen2-72b-instruct"
    assert page.inner_text("#d-fallback") == "no"
    rows = page.locator("#d-probs tbody tr")
    assert rows.count() == 3 and rows.first.inner_text().startswith("coding")


def test_empty_prompt_shows_an_error(login, user, active_router, live_server):
    page = login("operator", "operator-pass-123")
    page.evaluate("document.querySelector('#prompt').removeAttribute('required')")
    page.fill("#prompt", "   ")
    page.click("#route-form button[type=submit]")
    assert "must not be empty" in page.inner_text("#route-error")
