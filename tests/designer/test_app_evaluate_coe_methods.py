"""`evaluate_coe --shrinkage auto --splits`: the new options are reported, and the defaults are unchanged."""
import json

import pytest
from django.core.management import CommandError

from .test_app_evaluate_coe import run, write_inputs


@pytest.mark.django_db
def test_shrinkage_and_splits_are_options_and_default_is_unchanged(tmp_path, active_router):
    s, q, m = write_inputs(tmp_path)
    files = ("--scores", s, "--questions", q, "--models", m, "--folds", "4", "--json")
    plain = json.loads(run(*files))
    assert not plain["splits"] and plain["shrinkage"] == [{"strength": 0.0}] * 4
    assert json.loads(run(*files, "--shrinkage", "none"))["rows"] == plain["rows"]
    tuned = json.loads(run(*files, "--shrinkage", "auto", "--splits"))
    assert tuned["splits"] and all(f["strength"] in (0, 2, 5, 10, 20, 50) for f in tuned["shrinkage"])
    assert all(row["coe"] >= tuned["experts"][0]["score"] - 1e-9 for row in tuned["rows"])
    assert tuned["apgr"] > tuned["hull_apgr"]
    text = run(*files[:-1], "--shrinkage", "auto", "--splits")
    assert "split one category" in text and "Shrinkage strength per fold" in text


@pytest.mark.django_db
def test_inner_repeats_must_be_positive(tmp_path, active_router):
    s, q, m = write_inputs(tmp_path)
    with pytest.raises(CommandError, match="--inner-repeats must be at least 1"):
        run("--scores", s, "--questions", q, "--models", m, "--categories", "sub-clusters", "--inner-repeats", "0")
