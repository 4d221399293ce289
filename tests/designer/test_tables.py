import math

import numpy as np
import pytest

from designer.engine.tables import (MAX_ERRORS, TableError, check_models, parse_category_scores, parse_models,
                                    parse_prompt_scores, parse_questions)


def errors_of(call, *args, **kwargs) -> list[str]:
    with pytest.raises(TableError) as info:
        call(*args, **kwargs)
    return info.value.errors


def test_prompt_scores_csv_averages_turns_and_keeps_missing_as_nan():
    table = parse_prompt_scores(
        "prompt_id,prompt,model,score,turn\n"
        "p1,Hello,a,8,1\n"
        "p1,Hello,a,6,2\n"
        "p1,Hello,b,5,1\n"
        "p2,\"two\nlines\",a,,1\n"
        "p2,\"two\nlines\",b,3,1\n",
        "s.csv",
    )
    assert table.prompt_ids == ["p1", "p2"] and table.models == ["a", "b"]
    assert table.scores[0].tolist() == [7.0, 5.0]
    assert math.isnan(table.scores[1, 0]) and table.scores[1, 1] == 3
    assert table.prompts == {"p1": "Hello", "p2": "two\nlines"}
    assert table.complete(["b", "a"]) == (["p1"], pytest.approx(np.array([[5.0, 7.0]])))


def test_prompt_scores_jsonl_with_question_id_and_turns_aliases():
    table = parse_prompt_scores(
        '{"question_id": 81, "turns": ["first\u2028line", "second"], "model": "m", "score": 9}\r\n\n'
        '{"question_id": 82, "model": "m", "score": null}\n'.encode(),
        "s.jsonl",
    )
    assert table.prompt_ids == ["81", "82"] and table.prompts == {"81": "first\u2028line"}
    assert table.scores[0, 0] == 9 and math.isnan(table.scores[1, 0])


def test_missing_column_names_line_1_and_what_was_found():
    [error] = errors_of(parse_prompt_scores, "prompt_id,model,points\np,a,1\n", "s.csv")
    assert error.startswith("line 1: missing column(s) 'score'") and "points" in error


def test_non_numeric_score_and_wrong_field_count_are_line_numbered():
    errors = errors_of(parse_prompt_scores, "prompt_id,model,score\np,a,1\n\"q\nq\",a,high\nr,a\nr,b,inf\n", "s.csv")
    assert errors == [
        "line 3: score 'high' is not a number",
        "line 5: expected 3 fields, got 2",
        "line 6: score 'inf' is not a finite number",
    ]


def test_duplicate_rows_point_at_the_first():
    errors = errors_of(parse_prompt_scores, "prompt_id,model,score\np,a,1\np,b,2\np,a,3\n", "s.csv")
    assert errors == ["line 4: duplicate row for prompt 'p', model 'a' (first at line 2)"]
    errors = errors_of(parse_category_scores, "category,model,score\nx,a,1\nx,a,2\n", "c.csv")
    assert errors == ["line 3: duplicate row for category 'x', model 'a' (first at line 2)"]


def test_empty_file_bad_encoding_and_bad_json():
    assert errors_of(parse_prompt_scores, b"", "s.csv") == ["line 1: s.csv is empty"]
    assert errors_of(parse_models, "  \n", "m.csv") == ["line 1: m.csv is empty"]
    [error] = errors_of(parse_prompt_scores, "prompt_id,model,score\np,caf\xe9,1\n".encode("latin-1"), "s.csv")
    assert error.startswith("line 2: not valid UTF-8 (byte 0xe9)")
    lines = '{"prompt_id": "p", "model": "a", "score": 1}\n{oops\n[1]\n{"model": "a"}\n'
    errors = errors_of(parse_prompt_scores, lines, "s.jsonl")
    assert errors[0].startswith("line 2: not valid JSON")
    assert errors[1:] == ["line 3: expected a JSON object", "line 4: missing field(s) 'prompt_id', 'score'"]


def test_errors_stop_at_the_cap():
    rows = "".join(f"p{i},a,x\n" for i in range(3 * MAX_ERRORS))
    assert len(errors_of(parse_prompt_scores, "prompt_id,model,score\n" + rows, "s.csv")) == MAX_ERRORS


def test_models_file_defaults_active_to_total_and_checks_values():
    models = parse_models("model,total_params,active_params\nmix,46.7,12.9\ndense,7,\n", "m.csv")
    assert (models["mix"].params("total"), models["mix"].params("active")) == (46.7, 12.9)
    assert models["dense"].active_params == 7
    errors = errors_of(parse_models, "model,total_params,active_params\na,7,9\nb,0,\nc,,\nd,x,\na,1,1\n", "m.csv")
    assert errors == [
        "line 2: active_params 9 exceeds total_params 7",
        "line 3: parameter counts must be positive",
        "line 4: total_params is empty",
        "line 5: total_params 'x' is not a number",
        "line 6: duplicate model 'a' (first at line 2)",
    ]
    with pytest.raises(ValueError):
        models["mix"].params("peak")


def test_unknown_model_in_scores_names_its_first_line():
    table = parse_prompt_scores("prompt_id,model,score\np,a,1\np,ghost,2\nq,ghost,3\n", "s.csv")
    models = parse_models('{"model": "a", "total_params": 7}\n', "m.jsonl")
    assert errors_of(check_models, table, models) == ["line 3: model 'ghost' is not in the models file"]
    assert errors_of(table.complete, ["a", "zzz"]) == ["model 'zzz' has no scores in table 's.csv'"]


def test_category_table_and_by_category():
    table = parse_category_scores("category,model,score\ncode,a,-2.5\ncode,b,4\nmath,b,1\n", "c.csv", name="wb")
    assert table.name == "wb" and table.categories == ["code", "math"]
    assert table.scores[0].tolist() == [-2.5, 4.0] and math.isnan(table.scores[1, 0])
    prompts = parse_prompt_scores("prompt_id,model,score\n1,a,2\n1,b,4\n2,a,4\n2,b,\n3,a,9\n", "s.csv")
    by = prompts.by_category({"1": "x", "2": "x", "3": "y"})
    assert by.categories == ["x", "y"] and by.counts.tolist() == [2, 1]
    assert by.scores[0].tolist() == [3.0, 4.0] and by.scores[1, 0] == 9 and math.isnan(by.scores[1, 1])


def test_questions_take_first_turn_and_labels():
    questions = parse_questions('{"question_id": 1, "category": "math", "turns": ["a", "b"]}\n'
                                '{"question_id": 2, "turns": ["c"]}\n', "q.jsonl")
    assert questions.prompts == {"1": "a", "2": "c"} and questions.categories == {"1": "math"}
    assert errors_of(parse_questions, "prompt_id,prompt\n1,x\n1,y\n2,\n", "q.csv") == [
        "line 3: duplicate prompt '1' (first at line 2)", "line 4: empty prompt_id or prompt"]
