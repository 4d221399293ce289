"""The designer in a real browser: upload a table, see the heat-map and Pareto chart, move the budget slider,
apply the map and find the new version on the home page."""
import pytest

pytestmark = pytest.mark.django_db(transaction=True)

SCORES = "category,model,score\n" + "".join(
    f"{c},qwen2-7b-instruct,{s}\n{c},qwen2-72b-instruct,{b}\n"
    for c, s, b in [("coding", 3, 9), ("writing", 8, 8.2), ("math", 2, 9), ("general", 6, 7)])


def test_upload_design_and_apply(login, user, live_server, tmp_path):
    from experts.selectors import current_version_number

    user.is_staff = True
    user.save()
    before = current_version_number()
    (tmp_path / "cats.csv").write_text(SCORES)
    (tmp_path / "models.csv").write_text("model,total_params\nqwen2-7b-instruct,7.6\nqwen2-72b-instruct,72.7\n")
    (tmp_path / "bad.csv").write_text("category,model,score\ncoding,qwen2-7b-instruct,oops\n")
    page = login("operator", "operator-pass-123")
    page.click("nav >> text=Designer")
    page.fill("#t-name", "judge table")
    page.select_option("#t-kind", "category")
    page.set_input_files("#t-scores", str(tmp_path / "bad.csv"))
    page.set_input_files("#t-models", str(tmp_path / "models.csv"))
    page.click("#import-form button[type=submit]")
    assert "bad.csv: line 2: score 'oops' is not a number" in page.inner_text("#import-errors")

    page.select_option("#t-kind", "category")
    page.set_input_files("#t-scores", str(tmp_path / "cats.csv"))
    page.set_input_files("#t-models", str(tmp_path / "models.csv"))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#heatmap tbody tr")
    assert page.locator("#heatmap tbody tr").count() == 4
    assert "coding (25.0%)" in page.inner_text("#heatmap")
    assert page.locator("#pareto").bounding_box()["height"] > 100
    # at the largest budget every category goes to the big model
    assert page.inner_text("#map-quality") == "8.300"
    assert page.inner_text("#budget-map").count("qwen2-72b-instruct") >= 8

    page.eval_on_selector("#budget", "el => { el.value = el.min; el.dispatchEvent(new Event('input')); }")
    assert page.inner_text("#map-quality") == "4.750"
    assert "qwen2-72b-instruct" not in page.inner_text("#budget-map")
    page.eval_on_selector("#budget", "el => { el.value = 0.5 * 7.6 + 0.5 * 72.7;"
                                     " el.dispatchEvent(new Event('input')); }")
    rows = dict(line.split("\t")[:2] for line in page.inner_text("#budget-map tbody").splitlines())
    assert rows == {"coding": "qwen2-72b-instruct", "math": "qwen2-72b-instruct",
                    "general": "qwen2-7b-instruct", "writing": "qwen2-7b-instruct"}

    page.click("#apply-map")
    page.wait_for_selector("#design-message")
    assert f"v{before + 1}" in page.inner_text("#design-message")
    page.click("nav >> text=Router")
    assert page.inner_text("#map-version") == f"v{before + 1}"
    assert "coding\tqwen2-72b-instruct" in page.inner_text("#map-table")


def test_split_map_shown_at_the_budget_and_applied(login, user, live_server):
    from designer.services import import_table
    from experts.selectors import current_map

    user.is_staff = True
    user.save()
    models = b"model,total_params\nqwen2-7b-instruct,7.6\nqwen2-72b-instruct,72.7\n"
    qt = import_table(name="cats", kind="category", scores=("c.csv", SCORES.encode()), models=("m.csv", models))
    page = login("operator", "operator-pass-123")
    page.goto(f"{live_server.url}/designer/{qt.pk}/")
    page.check("#options input[name=split]")
    page.click("#options button[type=submit]")
    page.wait_for_selector("#budget-map tbody tr")
    budget = 7.6 + 1.5 * 0.25 * (72.7 - 7.6)  # math moved whole, then half of coding
    page.eval_on_selector("#budget", f"el => {{ el.value = {budget}; el.dispatchEvent(new Event('input')); }}")
    rows = dict(line.split("\t")[:2] for line in page.inner_text("#budget-map tbody").splitlines())
    assert rows["coding"] == "qwen2-7b-instruct + 50.0% to qwen2-72b-instruct" and rows["math"] == "qwen2-72b-instruct"
    assert page.inner_text("#map-cost") == f"{budget:.2f}"
    assert page.inner_text("#map-quality") == f"{(9 + 6 + 6 + 8) / 4:.3f}"  # halfway from 3 to 9 on coding
    page.click("#apply-map")
    page.wait_for_selector("#design-message")
    assert current_map().splits == {"coding": {"expert": "qwen2-72b-instruct", "share": pytest.approx(0.5)}}
    assert page.locator("#options input[name=split]").is_checked()
