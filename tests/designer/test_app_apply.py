"""Applying a designed map: a new map version through the map service, only for staff or edit_map holders."""
import pytest
from django.contrib.auth.models import Permission

from designer.models import TableModel
from designer.selectors import DesignError, design
from designer.services import apply_map, import_table
from experts.models import Expert, MapVersion
from experts.selectors import current_map, current_version_number
from experts.services import MapError, StaleMapVersion

MODELS = b"model,total_params\nqwen2-7b-instruct,7.6\nqwen2-72b-instruct,72.7\n"
SCORES = b"category,model,score\n" + b"".join(
    f"{c},qwen2-7b-instruct,{s}\n{c},qwen2-72b-instruct,{b}\n".encode()
    for c, s, b in [("coding", 3, 9), ("writing", 8, 8.2), ("math", 2, 9), ("general", 6, 7)])


@pytest.fixture
def table(db):
    return import_table(name="cats", kind="category", scores=("c.csv", SCORES), models=("m.csv", MODELS))


def test_apply_publishes_the_budget_map_and_keeps_uncovered_categories(table, user):
    before = current_map()
    d = design(table, cost="total")
    # cheapest map that sends coding and math to the big model: 0.25*(7.6+7.6) + 0.5*72.7
    version = apply_map(table=table, budget=0.5 * 7.6 + 0.5 * 72.7, base_version=before.version, user=user)
    assert version.number == before.version + 1 and version.author == user
    after = current_map()
    assert after.version == version.number
    assert (after.assignments["coding"], after.assignments["math"]) == ("qwen2-72b-instruct",) * 2
    assert (after.assignments["writing"], after.assignments["general"]) == ("qwen2-7b-instruct",) * 2
    assert after.assignments["roleplay"] == before.assignments["roleplay"]  # not in the table: unchanged
    assert d.problem.categories == ("coding", "general", "math", "writing")


def test_stale_base_and_unlinked_models_are_refused(table, user):
    current = current_version_number()
    with pytest.raises(StaleMapVersion):
        apply_map(table=table, budget=100, base_version=current - 1, user=user)
    TableModel.objects.filter(table=table, name="qwen2-72b-instruct").update(expert=None)
    with pytest.raises(DesignError, match="Link these models to experts first: qwen2-72b-instruct"):
        apply_map(table=table, budget=100, base_version=current, user=user)
    with pytest.raises(DesignError, match="No map costs 1 B or less"):
        apply_map(table=table, budget=1, base_version=current, user=user)
    assert current_version_number() == current


def test_categories_unknown_to_the_router_are_a_map_error(db, user):
    scores = b"category,model,score\nCreative Tasks,qwen2-7b-instruct,1\nCreative Tasks,qwen2-72b-instruct,2\n"
    t = import_table(name="wb", kind="category", scores=("c.csv", scores), models=("m.csv", MODELS))
    with pytest.raises(MapError, match="unknown category: Creative Tasks"):
        apply_map(table=t, budget=100, base_version=current_version_number(), user=user)


def test_apply_view_requires_permission(client, table, user):
    client.force_login(user)
    base = current_version_number()
    url = f"/designer/{table.pk}/apply"
    assert client.post(url, {"budget": 100, "base_version": base}).status_code == 403
    page = client.get(f"/designer/{table.pk}/")
    assert page.status_code == 200 and b'id="apply-map"' not in page.content
    user.user_permissions.add(Permission.objects.get(codename="edit_map"))
    user = type(user).objects.get(pk=user.pk)  # drop the permission cache
    client.force_login(user)
    assert b'id="apply-map"' in client.get(f"/designer/{table.pk}/").content
    response = client.post(url, {"budget": 100, "base_version": base})
    assert response.status_code == 302 and f"applied={base + 1}" in response.url
    assert MapVersion.objects.filter(number=base + 1, author=user).exists()
    stale = client.post(url, {"budget": 100, "base_version": base})
    assert stale.status_code == 409 and b"out of date" in stale.content


def test_link_view_sets_experts(client, table, user):
    user.is_staff = True
    user.save()
    client.force_login(user)
    small = TableModel.objects.get(table=table, name="qwen2-7b-instruct")
    expert = Expert.objects.get(name="gemma-2-9b-it")
    assert client.post(f"/designer/{table.pk}/link", {f"expert-{small.pk}": expert.pk}).status_code == 302
    small.refresh_from_db()
    assert small.expert == expert
    assert TableModel.objects.get(table=table, name="qwen2-72b-instruct").expert is None  # not in the form: unset


def test_frequencies_from_routed_traffic(table, active_router):
    with pytest.raises(DesignError, match="No routed traffic"):
        design(table, freq_source="traffic")
    from routing.services import route_prompts

    route_prompts(prompts=["Compose a sonnet about the sea at dawn."] * 3 + ["Solve 4x - 2 = 10 for x."], source="cli")
    d = design(table, freq_source="traffic")
    freq = dict(zip(d.problem.categories, d.problem.freq))
    assert freq == {"coding": 0.0, "general": 0.0, "math": 0.25, "writing": 0.75}


def test_apply_with_one_split_category_spends_the_budget_exactly(table, user):
    from designer.selectors import chart_data

    before = current_map()
    step = 0.25 * (72.7 - 7.6)  # moving one category (a quarter of the prompts) to the big model
    version = apply_map(table=table, budget=7.6 + 1.5 * step, base_version=before.version, user=user, splits=True)
    after = current_map()
    assert after.version == version.number and after.assignments["math"] == "qwen2-72b-instruct"  # gains 7: first
    assert after.assignments["coding"] == "qwen2-7b-instruct"  # gains 6: next, half of it
    assert after.splits == {"coding": {"expert": "qwen2-72b-instruct", "share": pytest.approx(0.5)}}
    assert "50% of coding to qwen2-72b-instruct" in version.note
    data = chart_data(design(table, splits=True))["split_front"]
    assert data["costs"] == pytest.approx([7.6 + k * step for k in range(5)])
    assert data["qualities"][:3] == pytest.approx([(2 + 3 + 6 + 8) / 4, (9 + 3 + 6 + 8) / 4, (9 + 9 + 6 + 8) / 4])
    # a deterministic apply keeps the split where the table's map leaves coding alone
    apply_map(table=table, budget=7.6 + 1.5 * step, base_version=version.number, user=user)
    assert current_map().splits == {"coding": {"expert": "qwen2-72b-instruct", "share": pytest.approx(0.5)}}
    # a split apply at a vertex ends the table's categories' earlier splits
    apply_map(table=table, budget=7.6 + 2 * step, base_version=version.number + 1, user=user, splits=True)
    assert current_map().splits == {} and current_map().assignments["coding"] == "qwen2-72b-instruct"
