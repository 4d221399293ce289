"""Shared fixtures: one router trained per session (engine level), installed as the active RouterModel per test."""
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def seed_examples():
    from routing.defaults import seed_examples

    return seed_examples()


@pytest.fixture(scope="session")
def trained_router(seed_examples):
    """An engine Router trained on the shipped seed data (logistic head: fast to cross-validate)."""
    from routing.engine import train

    prompts, labels = zip(*seed_examples)
    return train(list(prompts), list(labels), classifier="logistic")


@pytest.fixture
def active_router(db, trained_router):
    """Store ``trained_router`` as the active RouterModel (rolled back after the test)."""
    from routing.models import RouterModel

    meta = trained_router.meta
    return RouterModel.objects.create(
        version=1, is_active=True, embedder_id=meta["embedder_id"], classifier=meta["classifier"],
        params=meta["params"], thresholds=trained_router.thresholds, categories=trained_router.categories,
        training_data_hash=meta["training_data_hash"], training_size=meta["training_size"],
        metrics={"validation": meta["validation"], "candidates": meta["candidates"]},
        artifact=trained_router.to_bytes())


@pytest.fixture
def user(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("operator", password="operator-pass-123")


def shared_data(*parts):
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have ../shared/data beside the checkout")
        pytest.skip(f"{path} not available")
    return path
