"""activate_router: the one place a router becomes the active one (training, retraining)."""
import pytest
from django.db import IntegrityError, transaction

from routing.models import RouterModel
from routing.services import activate_router, train_router


def router(version, active=False):
    return RouterModel.objects.create(version=version, is_active=active, embedder_id="e", classifier="logistic",
                                      training_data_hash="h", training_size=1, artifact=b"")


def active_versions():
    return list(RouterModel.objects.filter(is_active=True).values_list("version", flat=True))


def test_activation_keeps_exactly_one_active_router(db):
    first, second, third = router(1, active=True), router(2), router(3)
    activate_router(router_id=second.pk)
    assert active_versions() == [2]
    activate_router(router_id=third.pk)
    assert active_versions() == [3]
    activate_router(router_id=third.pk)  # already active: still the one
    assert active_versions() == [3]
    activate_router(router_id=first.pk)
    assert active_versions() == [1]


def test_first_activation_on_an_empty_table(db):
    only = router(1)
    activate_router(router_id=only.pk)
    assert active_versions() == [1]


def test_unknown_router_leaves_the_active_one(db):
    router(1, active=True)
    with pytest.raises(RouterModel.DoesNotExist):
        activate_router(router_id=10**9)
    assert active_versions() == [1]


def test_the_constraint_still_refuses_two_active_rows(db):
    router(1, active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        router(2, active=True)


def test_training_activates_through_it(db, trained_router, monkeypatch):
    import routing.services as services

    monkeypatch.setattr(services.engine, "train", lambda *a, **k: trained_router)
    calls = []
    real = services.activate_router
    monkeypatch.setattr(services, "activate_router", lambda **kw: (calls.append(kw), real(**kw))[1])
    old = router(1, active=True)
    new = train_router(prompts=["x"], labels=["math"])
    assert new.is_active and calls == [{"router_id": new.pk}] and active_versions() == [new.version]
    old.refresh_from_db()
    assert not old.is_active
    kept = train_router(prompts=["x"], labels=["math"], activate=False)
    assert not kept.is_active and active_versions() == [new.version] and len(calls) == 1
