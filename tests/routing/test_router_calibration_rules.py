"""How a router is trained and calibrated, rule by rule: the uncertainty scores, the search for the fallback thresholds,
the stratified seeded folds, out-of-fold predictions, choosing the candidate, and what the trained router keeps.
Written to kill mutants of routing/engine/uncertainty.py and routing/engine/router.py's train()
(scripts/mutation.sh uncertainty router).

Training runs on a stand-in embedder and a "probe" classifier whose out-of-fold predictions are scripted per prompt,
so each rule is checked on exact numbers; test_engine.py trains the real classifiers on the real model."""
import types

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from routing.engine import router as engine
from routing.engine.evaluation import classification_metrics
from routing.engine.uncertainty import calibrate, entropy, margin, ood_threshold

# --- uncertainty scores ---------------------------------------------------------------------------------------


def test_entropy_is_normalised_by_the_number_of_classes():
    assert entropy(np.array([[0.5, 0.5]])).tolist() == pytest.approx([1.0], abs=1e-12)
    assert entropy(np.full((1, 4), 0.25)).tolist() == pytest.approx([1.0], abs=1e-12)
    assert entropy(np.array([[1.0, 0.0, 0.0, 0.0]])).tolist() == pytest.approx([0.0], abs=1e-9)  # 0·log 0 = 0
    p = np.array([[0.7, 0.2, 0.1, 0.0]])
    assert entropy(p)[0] == pytest.approx(-(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)) / np.log(4),
                                          abs=1e-9)


def test_entropy_is_per_row():
    rows = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]])
    e = entropy(rows)
    assert e.shape == (3,) and e[1] == pytest.approx(1.0) and e[0] == pytest.approx(e[2]) and e[0] < 0.5


def test_margin_is_top_minus_second_whatever_the_order():
    rows = np.array([[0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.5, 0.5, 0.0], [0.0, 0.25, 0.75]])
    assert margin(rows).tolist() == pytest.approx([0.3, 0.1, 0.0, 0.5], abs=1e-12)
    assert margin(np.array([[0.2, 0.8]])).tolist() == pytest.approx([0.6], abs=1e-12)


def test_ood_threshold_is_a_low_quantile_of_the_held_out_similarities():
    sims = np.linspace(0.0, 1.0, 101)
    assert ood_threshold(sims) == pytest.approx(0.01, abs=1e-12)  # default: the 1st percentile
    assert ood_threshold(sims, 0.25) == pytest.approx(0.25, abs=1e-12)
    assert type(ood_threshold(sims)) is float


# --- calibration -------------------------------------------------------------------------------------------------

CONFIDENT = [0.9, 0.05, 0.05]


def test_when_every_prediction_is_right_the_loosest_first_thresholds_keep_everything():
    """All kept; among equal outcomes the first candidate wins: the lowest entropy cut that keeps all, margin 0."""
    probs = np.array([CONFIDENT] * 5 + [[0.5, 0.5, 0.0], [0.6, 0.3, 0.1]])  # a tie row: its margin is exactly 0
    t = calibrate(probs, np.zeros(7, dtype=int), fallback_index=2)
    assert t == {"entropy": pytest.approx(float(entropy(probs).max()), abs=0), "margin": 0.0}


def test_fallback_value_decides_whether_a_doubtful_group_is_kept():
    """40 % right: worth keeping when a fallback is worth 0.3 (of a right answer), not when it is worth 0.5."""
    unsure = [0.5, 0.3, 0.2]
    probs = np.array([CONFIDENT] * 40 + [unsure] * 20)
    y = np.array([0] * 40 + [0] * 8 + [1] * 12)
    ent = entropy(probs)
    kept = lambda t: int(((ent <= t["entropy"]) & (margin(probs) >= t["margin"])).sum())  # noqa: E731
    assert kept(calibrate(probs, y, fallback_index=2)) == 40  # default fallback value 0.5: 20·0.5 = 10 > 8 right
    assert kept(calibrate(probs, y, fallback_index=2, fallback_value=0.3)) == 60  # 20·0.3 = 6 < 8 right


def test_a_group_right_exactly_half_the_time_is_kept_ties_keep_more_prompts():
    probs = np.array([CONFIDENT] * 10 + [[0.5, 0.3, 0.2]] * 10)
    y = np.array([0] * 10 + [0, 1] * 5)
    t = calibrate(probs, y, fallback_index=2)
    assert t["entropy"] >= entropy(probs).max() and t["margin"] <= 0.2


def test_falling_back_on_a_prompt_whose_truth_is_the_fallback_category_is_right():
    """Wrong predictions of 'general' prompts: falling back on them is worth 1, so they are dropped even when a
    fallback is worth little for other prompts."""
    wrong = [0.2, 0.5, 0.3]  # predicts class 1
    probs = np.array([CONFIDENT] * 20 + [wrong] * 10)
    y = np.array([0] * 20 + [2] * 10)
    ent = entropy(probs)
    t = calibrate(probs, y, fallback_index=2, fallback_value=0.0)
    assert ((ent <= t["entropy"]) & (margin(probs) >= t["margin"])).tolist() == [True] * 20 + [False] * 10
    t_other = calibrate(probs, y, fallback_index=1, fallback_value=0.0)  # 'general' is some other class
    assert t_other == {"entropy": pytest.approx(float(ent.max()), abs=0), "margin": 0.0}  # nothing gained: keep all


def test_the_entropy_cut_is_an_entropy_quantile_from_the_median_up_in_two_percent_steps():
    """100 prompts of rising entropy, the 60 least uncertain right: the cut is exactly the 60th percentile."""
    a = np.linspace(0.95, 0.60, 100)  # falling confidence: rising entropy
    probs = np.stack([a, (1 - a) * 0.5, (1 - a) * 0.5], axis=1)
    y = np.array([0] * 60 + [1] * 40)
    ent = entropy(probs)
    t = calibrate(probs, y, fallback_index=2)
    assert t["entropy"] == float(np.quantile(ent, 0.6))
    assert int((ent <= t["entropy"]).sum()) == 60


def test_the_lowest_entropy_cut_is_the_median():
    """Even when only the 30 least uncertain of 100 are right, the cut does not go below the median."""
    a = np.linspace(0.95, 0.60, 100)
    probs = np.stack([a, (1 - a) * 0.5, (1 - a) * 0.5], axis=1)  # the kept half's margins are all above 0.5
    y = np.array([0] * 30 + [1] * 70)
    t = calibrate(probs, y, fallback_index=2, fallback_value=0.4)
    assert t["entropy"] == float(np.quantile(entropy(probs), 0.5))


def test_the_margin_cut_is_on_a_grid_of_0_02_up_to_0_5():
    """Wrong prompts at margin 0.09 and right ones at 0.11, the wrong ones less uncertain (entropy cannot separate
    them): the cut lands at 0.10."""
    wrong = [0.5, 0.41, 0.09]  # margin 0.09, entropy 0.845; predicts 0, truth 1
    right = [0.45, 0.34, 0.21]  # margin 0.11, entropy 0.959
    probs = np.array([CONFIDENT] * 10 + [wrong] * 10 + [right] * 10)
    y = np.array([0] * 10 + [1] * 10 + [0] * 10)
    t = calibrate(probs, y, fallback_index=2)
    assert t["margin"] == pytest.approx(0.10, abs=1e-12)
    assert t["entropy"] >= entropy(probs).max()


def test_the_margin_cut_never_exceeds_0_5_and_keeps_a_prompt_exactly_at_it():
    """All wrong: prompts just under a margin of 0.5 are cut at 0.5; at exactly 0.5 or above nothing cuts them."""
    def cut(first_row):
        probs = np.array([first_row] * 10)
        return calibrate(probs, np.ones(10, dtype=int), fallback_index=2)["margin"]

    assert cut([0.7, 0.2, 0.1]) == 0.5  # margin 0.49999999999999994
    assert cut([0.75, 0.25, 0.0]) == 0.0  # margin exactly 0.5: kept by the 0.5 cut, so nothing is gained
    assert cut([0.76, 0.24, 0.0]) == 0.0  # margin 0.52: above every cut


def test_a_prompt_rightly_predicted_as_the_fallback_category_is_kept():
    """Falling back on a right 'general' prediction gives the same answer: no gain, and ties keep prompts."""
    probs = np.array([CONFIDENT] * 10 + [[0.3, 0.25, 0.45]] * 10)  # unsure, but rightly 'general' (index 2)
    t = calibrate(probs, np.array([0] * 10 + [2] * 10), fallback_index=2)
    assert t == {"entropy": pytest.approx(float(entropy(probs).max()), abs=0), "margin": 0.0}


# --- training: a stand-in embedder and a scripted probe classifier --------------------------------------------

GENERAL, MATH, WRITING = 0, 1, 2  # sorted category order


def row(k, p=0.8):
    r = [(1 - p) / 2] * 3
    r[k] = p
    return r


@pytest.fixture
def lab(monkeypatch):
    """Patches the router module with a recording embedder and a 'probe' classifier family.

    lab.scripts[name][text] is the probability row the probe with params {"script": name} predicts for text;
    lab.fits records every fit (script, texts, y, X); lab.vectors[text] overrides a prompt's embedding ([1, 0]).
    """
    state = types.SimpleNamespace(scripts={}, fits=[], vectors={}, embedder_calls=[], encoded=[])

    class Embedder:
        model_id, runtime = "table-model", "table-runtime"

        def encode(self, texts):
            state.encoded.append(list(texts))
            return np.array([state.vectors.get(t, [1.0, 0.0]) for t in texts], dtype=np.float32).reshape(-1, 2)

    def get_embedder(path=None, runtime=None):
        state.embedder_calls.append((path, runtime))
        return Embedder()

    class Probe:
        name = "probe"

        def __init__(self, script):
            self.script = script

        def fit(self, X, y, texts):
            assert len(X) == len(y) == len(texts)
            state.fits.append({"script": self.script, "texts": list(texts), "y": list(y), "X": np.array(X)})
            self.seen = set(texts)
            return self

        def predict_proba(self, X, texts):
            assert not self.seen & set(texts), "an out-of-fold prediction of a prompt the probe was trained on"
            own = [state.vectors.get(t, [1.0, 0.0]) for t in texts]
            assert np.array_equal(X, np.array(own, dtype=np.float32).reshape(-1, 2)), "not the prompts' embeddings"
            return np.array([state.scripts[self.script][t] for t in texts], dtype=float)

        def params(self):
            return {"script": self.script}

    monkeypatch.setattr(engine, "get_embedder", get_embedder)
    monkeypatch.setitem(engine.CLASSIFIERS, "probe", Probe)
    monkeypatch.setattr(engine, "CANDIDATES", {"probe": [{"script": "main"}]})
    state.Probe = Probe
    return state


def dataset(per_class=5):
    texts = [f"{c}{i}" for c in "gmw" for i in range(per_class)]
    labels = [{"g": "general", "m": "math", "w": "writing"}[t[0]] for t in texts]
    return texts, labels


def mostly_right():
    """13 of 15 right: m4 is taken for writing, g4 (a general prompt) for math, both with little confidence."""
    texts, _ = dataset()
    script = {t: row({"g": GENERAL, "m": MATH, "w": WRITING}[t[0]], 0.9) for t in texts}
    script["m4"] = [0.2, 0.35, 0.45]
    script["g4"] = [0.3, 0.45, 0.25]
    return script


def test_train_refuses_bad_input_with_a_message_naming_the_problem(lab):
    with pytest.raises(ValueError, match=r"^unknown classifier 'forest'; choose auto or one of \["):
        engine.train(["a", "b"], ["x", "y"], classifier="forest")
    for prompts, labels in ((["a", "b"], ["x"]), ([], []), (["a"], ["x", "y"])):
        with pytest.raises(ValueError, match="^need the same, non-zero number of prompts and labels$"):
            engine.train(prompts, labels)
    with pytest.raises(ValueError, match="^need at least two categories to train a router$"):
        engine.train(["a", "b", "c"], ["x", "x", "x"])
    assert lab.embedder_calls == []  # refused before any embedding work


def test_two_categories_are_enough(lab):
    lab.scripts["main"] = {"a0": [0.9, 0.1], "a1": [0.8, 0.2], "b0": [0.1, 0.9], "b1": [0.3, 0.7]}
    router = engine.train(["a0", "a1", "b0", "b1"], ["a", "a", "b", "b"])
    assert router.categories == ["a", "b"] and router.fallback == "a"  # no 'general': the first category


def test_training_embeds_every_prompt_once_with_the_chosen_model_and_runtime(lab):
    texts, labels = dataset()
    lab.scripts["main"] = mostly_right()
    router = engine.train(tuple(texts), labels, embedder_path="/models/x", runtime="onnx")
    assert lab.embedder_calls == [("/models/x", "onnx")]
    assert lab.encoded == [texts]
    assert router.embedder_path == "/models/x"
    assert (router.meta["embedder_id"], router.meta["embedder_runtime"]) == ("table-model", "table-runtime")
    assert router.reference_X.shape == (15, 2)


def fold_tests(lab, script="main"):
    """The held-out prompts of each cross-validation fit of `script` (the final fit on everything excluded)."""
    fits = [f for f in lab.fits if f["script"] == script]
    everything = [f for f in fits if len(f["texts"]) == 15]
    cv = [f for f in fits if f not in everything]
    texts, _ = dataset()
    return [sorted(set(texts) - set(f["texts"])) for f in cv]


def test_folds_are_stratified_seeded_and_shuffled(lab):
    texts, labels = dataset()
    lab.scripts["main"] = mostly_right()
    router = engine.train(texts, labels)
    held_out = fold_tests(lab)
    assert router.meta["folds"] == len(held_out) == 5 and router.meta["seed"] == 0
    assert sorted(t for fold in held_out for t in fold) == sorted(texts)  # each prompt held out exactly once
    assert all(sorted(t[0] for t in fold) == ["g", "m", "w"] for fold in held_out)  # one of each category
    y = np.array([{"general": 0, "math": 1, "writing": 2}[c] for c in labels])
    expected = [sorted(texts[i] for i in test)
                for _, test in StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(15), y)]
    assert held_out == expected
    lab.fits.clear()
    again = engine.train(texts, labels, seed=1)
    assert again.meta["seed"] == 1 and fold_tests(lab) != held_out


@pytest.mark.parametrize("per_class, folds, expected",
                         [(6, None, 5), (5, 5, 5), (5, 4, 4), (3, 5, 3), (5, 1, 2), (2, 5, 2)])
def test_fold_count_is_capped_by_the_smallest_category_and_at_least_two(lab, per_class, folds, expected):
    texts, labels = dataset(per_class)
    lab.scripts["main"] = {t: row({"g": 0, "m": 1, "w": 2}[t[0]], 0.9) for t in texts}
    kwargs = {} if folds is None else {"folds": folds}  # None: the default, 5
    assert engine.train(texts, labels, **kwargs).meta["folds"] == expected


def test_held_out_similarity_is_to_the_other_folds_only(lab):
    texts, labels = dataset()
    lab.scripts["main"] = mostly_right()
    rng = np.random.default_rng(3)
    for t in texts:
        v = rng.normal(size=2)
        lab.vectors[t] = (v / np.linalg.norm(v)).tolist()
    router = engine.train(texts, labels, ood_quantile=0.5)
    X = {t: np.array(lab.vectors[t], dtype=np.float32) for t in texts}
    nearest = []
    for fold in fold_tests(lab):
        for t in fold:
            nearest.append(max(float(X[t] @ X[o]) for o in texts if o not in fold))
    assert router.thresholds["ood_similarity"] == pytest.approx(float(np.median(nearest)), abs=1e-6)
    assert router.thresholds["ood_similarity"] < 1.0  # a prompt's own vector never counts


def test_thresholds_are_calibrated_on_the_winners_out_of_fold_predictions(lab):
    """m3, m4 and w4 get the same unsure prediction (math: right twice, wrong once), g4 is wrong and more unsure:
    with a fallback worth half a right answer (the default) only g4 falls back; worth 0.9 of one, all four do."""
    texts, labels = dataset()
    script = {t: row({"g": GENERAL, "m": MATH, "w": WRITING}[t[0]], 0.9) for t in texts}
    script.update(m3=[0.2, 0.5, 0.3], m4=[0.2, 0.5, 0.3], w4=[0.2, 0.5, 0.3], g4=[0.33, 0.34, 0.33])
    lab.scripts["main"] = script
    y = np.array([{"general": 0, "math": 1, "writing": 2}[c] for c in labels])
    probs = np.array([script[t] for t in texts])
    ent = entropy(probs)
    default = engine.train(texts, labels)
    assert default.thresholds == {**calibrate(probs, y, GENERAL, 0.5), "ood_similarity": 1.0}
    assert [t for t, e in zip(texts, ent) if e > default.thresholds["entropy"]] == ["g4"]
    strict = engine.train(texts, labels, fallback_value=0.9)
    assert strict.thresholds == {**calibrate(probs, y, GENERAL, 0.9), "ood_similarity": 1.0}
    assert [t for t, e in zip(texts, ent) if e > strict.thresholds["entropy"]] == ["g4", "m3", "m4", "w4"]


def test_a_general_prompt_falling_back_counts_as_right_when_calibrating(lab):
    """g3, g4 (general, taken for math) and m3, m4 (math, right) get the same unsure prediction. A fallback worth 0.3:
    keeping the group is worth 2; falling back is worth 2·1 + 2·0.3 = 2.6, because for g3 and g4 it is the right
    answer. So the group falls back."""
    texts, labels = dataset()
    script = {t: row({"g": GENERAL, "m": MATH, "w": WRITING}[t[0]], 0.9) for t in texts}
    script.update({t: [0.2, 0.5, 0.3] for t in ("g3", "g4", "m3", "m4")})
    lab.scripts["main"] = script
    router = engine.train(texts, labels, fallback_value=0.3)
    ent = entropy(np.array([script[t] for t in texts]))
    assert [t for t, e in zip(texts, ent) if e > router.thresholds["entropy"]] == ["g3", "g4", "m3", "m4"]


def test_without_a_general_category_a_fallback_counts_as_no_answer(lab):
    """No 'general': a validation prompt that falls back matches no category (serving would send it to the first)."""
    texts, _ = dataset()
    labels = [{"g": "alpha", "m": "beta", "w": "gamma"}[t[0]] for t in texts]
    script = {t: row({"g": 0, "m": 1, "w": 2}[t[0]], 0.9) for t in texts}
    script["m4"] = [0.34, 0.33, 0.33]  # a beta prompt, unsure, taken for alpha: it falls back
    lab.scripts["main"] = script
    validation = engine.train(texts, labels).meta["validation"]
    assert (validation["accuracy"], validation["routed_accuracy"], validation["fallback_rate"]) == (14 / 15, 14 / 15,
                                                                                                    1 / 15)


def test_validation_scores_count_a_fallback_as_general(lab):
    texts, labels = dataset()
    lab.scripts["main"] = mostly_right()
    meta = engine.train(texts, labels).meta
    y = [{"general": 0, "math": 1, "writing": 2}[c] for c in labels]
    raw = [int(np.argmax(lab.scripts["main"][t])) for t in texts]
    routed = [GENERAL if t in ("g4", "m4") else p for t, p in zip(texts, raw)]  # the two unsure ones fall back
    assert meta["validation"] == {
        "accuracy": 13 / 15, "macro_f1": classification_metrics(y, raw, 3)["macro_f1"],
        "routed_accuracy": 14 / 15, "routed_macro_f1": classification_metrics(y, routed, 3)["macro_f1"],
        "fallback_rate": 2 / 15}


def test_meta_records_what_the_router_was_trained_on(lab):
    texts, labels = dataset()
    lab.scripts["main"] = mostly_right()
    meta = engine.train(texts, labels).meta
    assert {k: meta[k] for k in ("classifier", "params", "training_size", "training_data_hash", "folds", "seed")} == {
        "classifier": "probe", "params": {"script": "main"}, "training_size": 15,
        "training_data_hash": engine.data_hash(texts, labels), "folds": 5, "seed": 0}
    assert meta["candidates"] == [{"classifier": "probe", "params": {"script": "main"}, "cv_accuracy": 13 / 15,
                                   "cv_macro_f1": meta["validation"]["macro_f1"]}]


def cycle_errors():
    """Two prompts of each category taken for the next one: 9/15 right, macro-F1 0.6."""
    texts, _ = dataset()
    return {t: row(({"g": 0, "m": 1, "w": 2}[t[0]] + (int(t[1]) < 2)) % 3) for t in texts}


def writing_as_math():
    """Every writing prompt taken for math: 10/15 right (more than cycle_errors) but macro-F1 0.556 (less)."""
    texts, _ = dataset()
    return {t: row({"g": 0, "m": 1, "w": 1}[t[0]]) for t in texts}


def test_the_best_macro_f1_wins_then_accuracy_and_ties_keep_the_first(lab, monkeypatch):
    texts, labels = dataset()
    lab.scripts.update(a=writing_as_math(), b=cycle_errors(), b_again=cycle_errors(), main=mostly_right())
    monkeypatch.setattr(engine, "CANDIDATES", {"probe": [{"script": "a"}, {"script": "b"}, {"script": "b_again"}]})
    seen = []
    router = engine.train(texts, labels, progress=seen.append)
    table = router.meta["candidates"]
    assert [(r["params"]["script"], r["cv_accuracy"], round(r["cv_macro_f1"], 3)) for r in table] == [
        ("a", 10 / 15, 0.556), ("b", 9 / 15, 0.6), ("b_again", 9 / 15, 0.6)]
    assert seen == table  # progress hears each candidate as it is scored
    assert router.meta["params"] == {"script": "b"} and router.classifier.script == "b"
    # a better candidate later in the list replaces an earlier one; the winner's scores are the validation ones
    monkeypatch.setattr(engine, "CANDIDATES", {"probe": [{"script": "b"}, {"script": "main"}]})
    router = engine.train(texts, labels)
    assert router.meta["params"] == {"script": "main"} and router.meta["validation"]["accuracy"] == 13 / 15


def test_equal_macro_f1_is_decided_by_accuracy(lab, monkeypatch):
    texts, labels = dataset()
    low = [0, 0, 2, 0, 0, 1, 1, 1, 2, 1, 2, 0, 0, 0, 2]   # 10/15 right, macro-F1 2/3
    high = [0, 0, 0, 0, 0, 2, 1, 0, 0, 2, 2, 2, 2, 2, 2]  # 11/15 right, macro-F1 2/3 exactly as well
    lab.scripts.update(low={t: row(k) for t, k in zip(texts, low)}, high={t: row(k) for t, k in zip(texts, high)})
    for order in (["low", "high"], ["high", "low"]):
        monkeypatch.setattr(engine, "CANDIDATES", {"probe": [{"script": name} for name in order]})
        meta = engine.train(texts, labels).meta
        (a, b) = meta["candidates"]
        assert a["cv_macro_f1"] == b["cv_macro_f1"] and a["cv_accuracy"] != b["cv_accuracy"]
        assert meta["params"] == {"script": "high"}, order


def test_auto_compares_every_family_and_a_named_classifier_only_its_own(lab, monkeypatch):
    texts, labels = dataset()
    lab.scripts.update(main=mostly_right(), other=cycle_errors())
    monkeypatch.setitem(engine.CLASSIFIERS, "probe2", lab.Probe)
    monkeypatch.setattr(engine, "CANDIDATES", {"probe2": [{"script": "other"}], "probe": [{"script": "main"}]})
    auto = engine.train(texts, labels)
    assert [(r["classifier"], r["params"]) for r in auto.meta["candidates"]] == [
        ("probe2", {"script": "other"}), ("probe", {"script": "main"})]
    assert auto.meta["classifier"] == "probe"
    lab.fits.clear()
    named = engine.train(texts, labels, classifier="probe2")
    assert [r["classifier"] for r in named.meta["candidates"]] == ["probe2"] and named.meta["classifier"] == "probe2"
    assert {f["script"] for f in lab.fits} == {"other"}


def test_the_winner_is_refitted_on_all_prompts(lab, monkeypatch):
    texts, labels = dataset()
    lab.scripts.update(a=writing_as_math(), main=mostly_right())
    monkeypatch.setattr(engine, "CANDIDATES", {"probe": [{"script": "a"}, {"script": "main"}]})
    router = engine.train(texts, labels)
    final = lab.fits[-1]
    assert len(lab.fits) == 2 * 5 + 1
    assert (final["script"], final["texts"], final["y"]) == ("main", texts, [0] * 5 + [1] * 5 + [2] * 5)
    assert np.array_equal(final["X"], router.reference_X)
    assert router.classifier.script == "main" and router.classifier.seen == set(texts)


def test_fallback_mask_edges_match_serving():
    probs = np.array([[0.6, 0.0, 0.4]] * 4)
    e, m = float(entropy(probs[:1])[0]), float(margin(probs[:1])[0])
    t = {"ood_similarity": 0.5, "entropy": e, "margin": m}
    nearest = np.array([0.5, np.nextafter(0.5, 0), 0.5, 0.5])
    assert engine._fallback_mask(probs, nearest, t).tolist() == [False, True, False, False]
    assert engine._fallback_mask(probs, np.full(4, 0.5), {**t, "entropy": np.nextafter(e, 0)}).all()
    assert engine._fallback_mask(probs, np.full(4, 0.5), {**t, "margin": np.nextafter(m, 1)}).all()
