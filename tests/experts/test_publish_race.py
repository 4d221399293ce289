"""Two editors publish on the same map version at the same instant, from separate processes, many times over: exactly
one new version, the other told its base is stale, and the new version holds the winner's note and assignments
only (PostgreSQL; see tests/racers.py). Plus the single-process rules of the stale check the race relies on."""
import pytest

from experts.models import MapVersion
from experts.selectors import current_map, current_version_number
from experts.services import StaleMapVersion, publish_map

from ..racers import needs_postgresql, racing

ROUNDS = 15
EXPERTS = ("gemma-2-9b-it", "gemma-2-27b-it")  # what each racer maps 'math' to


def stored(number):
    version = MapVersion.objects.get(number=number)
    return version.note, {a.category.name: a.expert.name for a in version.assignments.all()}


@pytest.mark.django_db(transaction=True)
def test_two_processes_publishing_on_one_base_exactly_one_wins():
    needs_postgresql()
    with racing() as race:
        for r in range(ROUNDS):
            base = current_version_number()
            edits = [{**current_map().assignments, "math": EXPERTS[i], "coding": EXPERTS[(i + r) % 2]} for i in (0, 1)]
            outcomes = race("publish_map", *[{"base_version": base, "assignments": edits[i],
                                              "note": f"racer {i}, round {r}"} for i in (0, 1)])
            ok = [i for i, (outcome, _) in enumerate(outcomes) if outcome == "ok"]
            assert len(ok) == 1, f"round {r}: {outcomes}"
            (winner,) = ok
            loser = outcomes[1 - winner]
            assert outcomes[winner][1] == base + 1
            assert loser[0] == "StaleMapVersion" and f"Map version {base} is out of date" in loser[1]
            assert current_version_number() == base + 1 == MapVersion.objects.count()
            assert stored(base + 1) == (f"racer {winner}, round {r}", edits[winner])


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [-1, 1, 5])
def test_a_base_other_than_the_current_version_is_refused(offset):
    """Behind (someone published meanwhile) or ahead (a version that does not exist yet): both are stale."""
    first = publish_map(base_version=1, assignments={**current_map().assignments, "math": EXPERTS[0]}, note="v2")
    assert first.number == 2
    with pytest.raises(StaleMapVersion, match=f"Map version {2 + offset} is out of date: the current version is 2"):
        publish_map(base_version=2 + offset, assignments={**current_map().assignments, "math": EXPERTS[1]}, note="stale")
    assert MapVersion.objects.count() == 2 and current_map().assignments["math"] == EXPERTS[0]
