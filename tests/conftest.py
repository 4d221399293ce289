"""Shared fixtures: one router trained per session (engine level), installed as the active RouterModel per test.

Test order and data: transactional tests (live servers, worker processes, threads) flush every table when they end,
including the taxonomy, experts and map that migrations seed. ``_reseed_after_flush`` puts those back before the next database test. Browser tests
run last: Playwright's sync API keeps an event loop running in the main thread, which breaks later async tests.
"""
import os
from pathlib import Path

import pytest

from tests.skip_report import pytest_sessionfinish, pytest_terminal_summary  # noqa: F401  (hooks)

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


def make_user(username, *roles, password=None, **fields):
    """A user in the given role groups (see access/migrations/0002: Viewers, Operators, Map editors, Backend admins,
    Auditors)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    u = get_user_model().objects.create_user(username, password=password or f"{username}-pass-123", **fields)
    u.groups.add(*[Group.objects.get(name=role) for role in roles])
    return u


@pytest.fixture
def user(db):
    """An operator: may route, upload batches and chat (not edit the map)."""
    return make_user("operator", "Operators")


def shared_data(*parts):
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have ../shared/data beside the checkout")
        pytest.skip(f"{path} not available")
    return path


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)  # stable: browser tests last


class _MovedModels:
    """The live models under the labels the data migrations were written with (Category was routing's)."""

    moved = {("routing", "category"): ("experts", "Category")}

    def __init__(self, apps):
        self.apps = apps

    def get_model(self, app_label, model_name):
        return self.apps.get_model(*self.moved.get((app_label, model_name.lower()), (app_label, model_name)))


def _reseed():
    from importlib import import_module

    from django.apps import apps

    from django.contrib.auth.models import Group

    from experts.models import MapVersion

    if not MapVersion.objects.exists():
        import_module("routing.migrations.0002_default_taxonomy").load(_MovedModels(apps), None)
        import_module("experts.migrations.0003_default_experts_and_map").load(_MovedModels(apps), None)
    if not Group.objects.exists():
        import_module("access.migrations.0002_scopes_expiry_roles").role_groups(apps)


@pytest.fixture(autouse=True)
def _reseed_after_flush(request):
    """Before a database test: if an earlier transactional test flushed the seeded defaults, put them back."""
    names = set(request.fixturenames)
    if request.node.get_closest_marker("django_db") or names & {"db", "transactional_db", "live_server"}:
        request.getfixturevalue("_django_db_helper")  # database access as the test will have it
        _reseed()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and at the end: end PostgreSQL sessions that worker threads of in-process
    servers still hold (the OpenAI endpoint's thread pool keeps its connections by design), so it can be dropped."""
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
