"""Importing quality tables: good files are stored (per prompt: routed into the router's categories), bad files
give line-numbered errors and store nothing."""
import pytest

from designer.models import CategoryScore, PromptScore, QualityTable, TableModel, TablePrompt
from designer.selectors import chart_data, design
from designer.services import ImportFailed, import_table

MODELS = b"model,total_params,active_params\nsmall,7,\nqwen2-72b-instruct,72.7,\n"
PROMPT_SCORES = (
    "prompt_id,prompt,model,score\n"
    "p1,Write a Python function that parses ISO dates.,small,3\n"
    "p1,Write a Python function that parses ISO dates.,qwen2-72b-instruct,9\n"
    "p2,Compose a short poem about autumn leaves.,small,8\n"
    "p2,Compose a short poem about autumn leaves.,qwen2-72b-instruct,8.5\n"
).encode()


@pytest.mark.django_db
def test_per_prompt_table_is_routed_and_stored(active_router, user):
    qt = import_table(name="judge", kind="prompt", scale="1-10", scores=("s.csv", PROMPT_SCORES),
                      models=("m.csv", MODELS), user=user)
    assert (qt.kind, qt.scale, qt.source_name, qt.router_version) == ("prompt", "1-10", "s.csv", 1)
    models = {m.name: m for m in TableModel.objects.filter(table=qt)}
    assert models["small"].active_params == 7 and models["small"].expert is None
    assert models["qwen2-72b-instruct"].expert.name == "qwen2-72b-instruct"  # linked by name
    cats = dict(TablePrompt.objects.filter(table=qt).values_list("prompt_id", "category"))
    assert cats == {"p1": "coding", "p2": "writing"}
    assert PromptScore.objects.filter(prompt__table=qt).count() == 4
    data = chart_data(design(qt, cost="total"))
    assert data["categories"] == ["coding", "writing"]
    assert data["quality"] == [[3.0, 9.0], [8.0, 8.5]]
    assert data["front"]["costs"][0] == pytest.approx(7) and data["front"]["qualities"][-1] == pytest.approx(8.75)
    assert data["oracle"]["prompts"] == 2


@pytest.mark.django_db
def test_questions_file_supplies_prompt_text(active_router):
    scores = b"prompt_id,model,score\nq1,small,2\nq1,qwen2-72b-instruct,7\n"
    with pytest.raises(ImportFailed, match="have no text"):
        import_table(name="t", kind="prompt", scores=("s.csv", scores), models=("m.csv", MODELS))
    qt = import_table(name="t", kind="prompt", scores=("s.csv", scores), models=("m.csv", MODELS),
                      questions=("q.jsonl", b'{"prompt_id": "q1", "prompt": "Solve 3x + 5 = 20 for x."}\n'))
    assert TablePrompt.objects.get(table=qt).category == "math"


@pytest.mark.django_db
def test_per_category_table():
    scores = (b'{"category": "coding", "model": "small", "score": -2}\n'
              b'{"category": "coding", "model": "qwen2-72b-instruct", "score": 6}\n')
    qt = import_table(name="wb", kind="category", scores=("c.jsonl", scores), models=("m.csv", MODELS))
    assert qt.router_version is None
    assert sorted(CategoryScore.objects.filter(table=qt).values_list("score", flat=True)) == [-2.0, 6.0]
    assert chart_data(design(qt, cost="active"))["freq"] == [1.0]


@pytest.mark.django_db
@pytest.mark.parametrize("scores, models, expected", [
    (b"prompt_id,prompt,model,score\np1,hi,small,3\np1,hi,small,4\n", MODELS,
     "s.csv: line 3: duplicate row for prompt 'p1', model 'small' (first at line 2)"),
    (b"prompt_id,prompt,model,score\np1,hi,small,lots\n", MODELS, "s.csv: line 2: score 'lots' is not a number"),
    (b"prompt_id,prompt,model\np1,hi,small\n", MODELS, "s.csv: line 1: missing column(s) 'score'"),
    (b"prompt_id,prompt,model,score\np1,hi,big,3\n", MODELS, "s.csv: line 2: model 'big' is not in the models file"),
    (PROMPT_SCORES, b"model,total_params\nsmall,7\nsmall,8\n", "m.csv: line 3: duplicate model 'small'"),
    (PROMPT_SCORES, b"model,total_params,active_params\nsmall,7,9\n", "m.csv: line 2: active_params 9 exceeds"),
])
def test_bad_files_give_line_numbered_errors_and_store_nothing(active_router, scores, models, expected):
    with pytest.raises(ImportFailed) as info:
        import_table(name="bad", kind="prompt", scores=("s.csv", scores), models=("m.csv", models))
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors
    assert not QualityTable.objects.exists() and not TableModel.objects.exists()
