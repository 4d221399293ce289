"""`evaluate_coe`'s method options: the default is the recommended method (learned categories, shrinkage, splits);
each part can be turned off."""
import json

import pytest
from django.core.management import CommandError

from designer.management.commands.evaluate_coe import Command

from .test_app_evaluate_coe import run, write_inputs


@pytest.mark.django_db
def test_default_is_the_recommended_method_and_each_part_can_be_turned_off(tmp_path, active_router):
    s, q, m = write_inputs(tmp_path)
    files = ("--scores", s, "--questions", q, "--models", m, "--folds", "4", "--json")
    default = json.loads(run(*files))
    assert default["categories"] == "auto" and default["splits"]
    assert all(f["strength"] in (0, 2, 5, 10, 20, 50) and "inner_apgr" in f for f in default["shrinkage"])
    candidates = set(default["chosen_per_fold"][0]["inner_apgr"])
    assert {"router", "2", "12", "predicted:3", "predicted:20"} <= candidates
    parsed = Command().create_parser("manage.py", "evaluate_coe").parse_args([])
    assert (parsed.categories, parsed.shrinkage, parsed.splits) == ("auto", "auto", True)
    assert all(row["coe"] >= default["experts"][0]["score"] - 1e-9 for row in default["rows"])
    assert default["apgr"] > default["hull_apgr"]
    plain = json.loads(run(*files, "--categories", "router", "--shrinkage", "none", "--no-splits"))
    assert not plain["splits"] and plain["shrinkage"] == [{"strength": 0.0}] * 4 and "chosen_per_fold" not in plain
    assert plain["rows"] != default["rows"]
    text = run(*files[:-1])
    assert all(part in text for part in ("Categories per fold", "split one category", "Shrinkage strength per fold"))


@pytest.mark.django_db
def test_inner_repeats_must_be_positive(tmp_path, active_router):
    s, q, m = write_inputs(tmp_path)
    with pytest.raises(CommandError, match="--inner-repeats must be at least 1"):
        run("--scores", s, "--questions", q, "--models", m, "--categories", "sub-clusters", "--inner-repeats", "0")
