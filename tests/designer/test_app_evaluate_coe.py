"""`evaluate_coe`: files in, held-out report out (JSON shape, CoE never below the cheapest expert), clear errors."""
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tests.conftest import shared_data

# Prompts the seed-trained router files under clearly different categories; the small model is good at writing,
# the mid one at math, the big one at everything.
TOPICS = {
    "writing": ["Write a short poem about {}.", "Compose a cheerful limerick about {}."],
    "math": ["Solve for x: {}x + 7 = 31.", "What is the integral of x^{} with respect to x?"],
    "coding": ["Write a Python function that sorts a list of {} by length.",
               "Fix this JavaScript bug: my loop over {} items never ends."],
}
QUALITY = {"writing": (8, 6, 9), "math": (2, 8, 9), "coding": (3, 4, 9)}


def write_inputs(tmp_path, seed=0):
    rng = np.random.default_rng(seed)
    questions, scores = [], ["prompt_id,model,score"]
    for topic, templates in TOPICS.items():
        for i in range(12):
            pid = f"{topic}-{i}"
            questions.append(json.dumps({"prompt_id": pid, "prompt": templates[i % 2].format(i + 3)}))
            for model, q in zip(("small", "mid", "big"), QUALITY[topic]):
                scores.append(f"{pid},{model},{np.clip(q + rng.normal(0, 0.7), 1, 10):.2f}")
    (tmp_path / "q.jsonl").write_text("\n".join(questions) + "\n")
    (tmp_path / "s.csv").write_text("\n".join(scores) + "\n")
    (tmp_path / "m.csv").write_text("model,total_params,active_params\nsmall,7,\nmid,47,13\nbig,70,\n")
    return [str(tmp_path / f) for f in ("s.csv", "q.jsonl", "m.csv")]


def run(*args):
    from io import StringIO

    out = StringIO()
    call_command("evaluate_coe", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_json_report_on_a_synthetic_pool(tmp_path, active_router):
    s, q, m = write_inputs(tmp_path)
    report = json.loads(run("--scores", s, "--questions", q, "--models", m, "--folds", "4", "--seed", "1",
                            "--categories", "router", "--json"))
    assert report["n_prompts"] == 36 and report["folds"] == 4 and report["cost"] == "total"
    assert report["router_version"] == 1 and report["n_categories"] == len(report["category_counts"]) >= 3
    assert [p["name"] for p in report["experts"]] == ["small", "mid", "big"]
    assert (report["cheapest"], report["best"]) == ("small", "big")
    assert len(report["rows"]) == 50 and report["routellm"] is None
    cheapest = report["experts"][0]["score"]
    for row in report["rows"]:
        assert set(row) == {"budget", "score", "avg_cost", "avg_total_params", "avg_active_params", "coe", "hull",
                            "oracle"}
        assert row["coe"] >= cheapest - 1e-9  # held out, a map never does worse than the cheapest expert
        assert row["oracle"] >= row["coe"] - 1e-9
    assert report["apgr"] > report["hull_apgr"]  # categories carry signal here
    active = json.loads(run("--scores", s, "--questions", q, "--models", m, "--cost", "active", "--categories", "router",
                            "--json"))
    assert active["rows"][-1]["budget"] == 70 and active["experts"][1]["avg_active_params"] == 13


@pytest.mark.django_db
def test_clusters_are_chosen_per_training_fold(tmp_path, active_router):
    s, q, m = write_inputs(tmp_path)
    report = json.loads(run("--scores", s, "--questions", q, "--models", m, "--folds", "3", "--categories",
                            "clusters", "--json"))
    assert report["categories"] == "clusters" and len(report["chosen_per_fold"]) == 3
    assert all(f["chosen"] in f["inner_apgr"] for f in report["chosen_per_fold"])
    assert all(row["coe"] >= report["experts"][0]["score"] - 1e-9 for row in report["rows"])


@pytest.mark.django_db
def test_two_expert_pool_reports_routellm_metrics(tmp_path, active_router):
    s, q, m = write_inputs(tmp_path)
    (tmp_path / "m.csv").write_text("model,total_params\nsmall,7\nbig,70\n")
    text = run("--scores", s, "--questions", q, "--models", m, "--categories", "router")
    assert "RouteLLM: APGR" in text and "per-prompt oracle" in text
    report = json.loads(run("--scores", s, "--questions", q, "--models", m, "--categories", "router", "--json"))
    rl = report["routellm"]
    assert rl["strong_pct"][0] == 0 and rl["strong_pct"][-1] == 100 and 0 <= rl["apgr"] <= 1


@pytest.mark.django_db
def test_bad_inputs_are_clear_errors(tmp_path, active_router):
    s, q, m = write_inputs(tmp_path)
    (tmp_path / "bad.csv").write_text("prompt_id,model,score\nwriting-0,small,high\n")
    with pytest.raises(CommandError, match=r"bad.csv:\n  line 2: score 'high' is not a number"):
        run("--scores", str(tmp_path / "bad.csv"), "--questions", q, "--models", m)
    (tmp_path / "m2.csv").write_text("model,total_params\nsmall,7\nhuge,400\n")
    with pytest.raises(CommandError, match="model 'huge' has no scores"):
        run("--scores", s, "--questions", q, "--models", str(tmp_path / "m2.csv"))
    with pytest.raises(CommandError, match="cannot read"):
        run("--scores", str(tmp_path / "missing.csv"), "--questions", q, "--models", m)
    with pytest.raises(CommandError, match="need --scores, --questions and --models"):
        run("--scores", s)


@pytest.mark.django_db
def test_mt_bench_real_data(active_router):
    shared_data("mt_bench", "scores_by_question.csv")
    report = json.loads(run("--dataset", "mt_bench", "--data", str(shared_data()), "--json"))
    assert report["n_prompts"] == 80 and report["cheapest"].startswith("mistralai/Mixtral")
    assert report["best"] == "gpt-4-1106-preview"
    assert report["categories"] == "auto" and len(report["chosen_per_fold"]) == 5
    # routed categories must beat a random mix of the two models on held-out questions
    assert report["apgr"] > report["hull_apgr"] and report["routellm"]["apgr"] > 0.5


@pytest.mark.django_db
def test_mmlu_real_data_with_router_categories(active_router):
    """All 14,042 questions are routed (embeddings cached on disk by text hash) and held out once."""
    data = shared_data("routellm_mmlu").parent
    report = json.loads(run("--dataset", "mmlu", "--data", str(data), "--categories", "router", "--folds", "5",
                            "--seed", "0", "--json"))
    assert report["source"] == "mmlu" and report["n_prompts"] == 14042 and report["dropped_prompts"] == 0
    assert sum(report["category_counts"].values()) == 14042 and report["splits"]
    assert (report["cheapest"], report["best"]) == ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview")
    assert report["apgr"] > report["hull_apgr"] and 0 < report["routellm"]["cpt50"] < 50


@pytest.mark.django_db
def test_gsm8k_real_data(active_router):
    """(The default method runs on real data in test_mt_bench_real_data; on GSM8K it takes minutes.)"""
    data = shared_data("routellm_gsm8k").parent
    report = json.loads(run("--dataset", "gsm8k", "--data", str(data), "--categories", "router", "--folds", "3",
                            "--seed", "1", "--json"))
    assert report["n_prompts"] == 1319 and report["folds"] == 3 and report["seed"] == 1
    assert [p["score"] for p in report["experts"]] == pytest.approx([1130 / 1319, 842 / 1319])
    assert all(row["coe"] >= report["experts"][1]["score"] - 1e-9 for row in report["rows"])
