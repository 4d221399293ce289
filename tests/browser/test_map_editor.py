"""The map editor in a real browser: preview the impact, save a version, diff it, roll back."""
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("boss", password="boss-pass-123")


def test_edit_preview_save_diff_rollback(login, staff, active_router, live_server):
    from routing.services import route_prompts

    route_prompts(prompts=["Solve 2x + 3 = 11.", "Find the derivative of x^4.", "Write a poem about rain."],
                  source="api")
    page = login("boss", "boss-pass-123")
    page.goto(f"{live_server.url}/map/")
    assert page.inner_text("#map-version") == "v1"
    page.check("input[name='assign-math'][value='gemma-2-27b-it']")
    page.click("#preview-button")
    page.wait_for_selector("#preview:not([hidden])")
    assert page.inner_text("#preview-changed") == "2"
    rows = {r.split("\t")[0]: r.split("\t")[1:] for r in page.locator("#preview-table tbody tr").all_inner_texts()}
    assert rows["qwen2-72b-instruct"] == ["2", "0"] and rows["gemma-2-27b-it"] == ["1", "3"]
    page.fill("#map-note", "math on gemma")
    page.click("#save-button")
    page.wait_for_selector(".msg")
    assert "Saved map version v2" in page.inner_text(".messages")
    assert page.inner_text("#map-version") == "v2"

    page.goto(f"{live_server.url}/map/history/?a=1&b=2")
    changed = page.locator("#diff tr.changed").all_inner_texts()
    assert changed == ["math\tqwen2-72b-instruct\tgemma-2-27b-it"]
    page.click("tr[data-version='1'] button.rollback")
    page.wait_for_selector(".msg")
    assert "v3 restores v1" in page.inner_text(".messages")
    assert page.locator("#versions tbody tr").count() == 3


def test_split_part_of_a_category_to_a_canary(login, staff, active_router, live_server):
    from experts.selectors import current_map, split_key
    from routing.services import route_prompts

    prompts = [f"Solve {i}x + 3 = {i + 11} for x." for i in range(12)]
    decisions = route_prompts(prompts=prompts, source="api")
    maths = [p for p, d in zip(prompts, decisions) if d["category"] == "math"]
    page = login("boss", "boss-pass-123")
    page.goto(f"{live_server.url}/map/")
    page.select_option("select[name='split-math']", "gemma-2-9b-it")
    page.fill("input[name='share-math']", "50")
    page.click("#preview-button")
    page.wait_for_selector("#preview:not([hidden])")
    expected = sum(split_key(p) < 0.5 for p in maths)
    assert maths and page.inner_text("#preview-changed") == str(expected)
    page.fill("#map-note", "half of math to a canary")
    page.click("#save-button")
    page.wait_for_selector(".msg")
    assert current_map().splits == {"math": {"expert": "gemma-2-9b-it", "share": 0.5}}
    assert page.input_value("input[name='share-math']") == "50.0"
    assert page.locator("select[name='split-math'] option:checked").inner_text() == "gemma-2-9b-it"


def test_viewer_sees_no_edit_controls(login, user, live_server):
    page = login("operator", "operator-pass-123")
    page.goto(f"{live_server.url}/map/")
    assert page.locator("#save-button").count() == 0 and page.locator("#retrain-button").count() == 0
    assert page.locator("#map-grid input[type=radio]:not([disabled])").count() == 0
    assert page.locator("#map-grid select:not([disabled])").count() == 0
