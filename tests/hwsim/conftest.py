"""Fixtures for the hwsim app tests: a recorder of "hwsim" events, and
routed decisions written directly (the routing engine is exercised by the live-twin test instead)."""
import pytest


@pytest.fixture
def hwsim_events():
    """A subscription to the "hwsim" group; call the returned function to drain the events received so far."""
    import json

    from coe_site.bus import get_bus

    with get_bus().recorder(["hwsim"]) as drain:
        yield lambda: [(m["event"], m["data"]) for m in (json.loads(text) for _, text in drain(0.5))]


@pytest.fixture
def staff(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("sim-staff", password="sim-staff-pass-123", is_staff=True)


@pytest.fixture
def make_decisions(db):
    """make_decisions([(category, prompt chars), ...]) → RoutingDecision rows routed with the current map."""
    from experts.selectors import current_map
    from routing.models import RouterModel, RoutingDecision

    def make(items):
        router = RouterModel.objects.create(version=RouterModel.objects.count() + 100, embedder_id="test",
                                            classifier="test", training_data_hash="x", training_size=0,
                                            artifact=b"")
        snap = current_map()
        rows = []
        for category, chars in items:
            name, expert_id = snap.expert_for(category)
            rows.append(RoutingDecision(source="api", prompt="x" * chars, category=category,
                                        predicted_category=category, confidence=0.9, probabilities=[],
                                        entropy=0.1, margin=0.5, expert_id=expert_id,
                                        map_version_id=snap.version_id, router=router, latency_ms=1.0))
        return RoutingDecision.objects.bulk_create(rows)

    return make
