"""Writes to the map: validate, refuse stale bases, create an immutable version and an audit row."""
from django.db import IntegrityError, transaction

from .models import AuditEntry, Expert, MapAssignment, MapVersion
from .selectors import current_version_number, map_assignments

FALLBACK_CATEGORY = "general"


class MapError(ValueError):
    """An invalid map: unknown or unmapped categories, unknown or disabled experts."""


class StaleMapVersion(Exception):
    """The edit was based on a version that is no longer current."""

    def __init__(self, base, current):
        super().__init__(f"Map version {base} is out of date: the current version is {current}. "
                         f"Reload, re-apply your change and save again.")
        self.base, self.current = base, current


def _validate(assignments):
    from routing.models import Category

    if not isinstance(assignments, dict) or not assignments:
        raise MapError("assignments must be a non-empty object of category → expert.")
    categories = {c.name: c for c in Category.objects.filter(retired=False)}
    experts = {e.name: e for e in Expert.objects.all()}
    problems = []
    unknown_c = sorted(set(assignments) - set(categories))
    if unknown_c:
        problems.append("unknown categor" + ("ies: " if len(unknown_c) > 1 else "y: ") + ", ".join(unknown_c))
    unknown_e = sorted({str(e) for e in assignments.values()} - set(experts))
    if unknown_e:
        problems.append("unknown expert" + ("s: " if len(unknown_e) > 1 else ": ") + ", ".join(unknown_e))
    disabled = sorted({e for e in assignments.values() if e in experts and not experts[e].enabled})
    if disabled:
        problems.append("disabled expert" + ("s: " if len(disabled) > 1 else ": ") + ", ".join(disabled))
    missing = sorted(set(categories) - set(assignments))
    if missing:
        problems.append("unmapped categor" + ("ies: " if len(missing) > 1 else "y: ") + ", ".join(missing))
    if FALLBACK_CATEGORY not in assignments and FALLBACK_CATEGORY not in missing:
        problems.append(f"the '{FALLBACK_CATEGORY}' category must always be mapped")
    if problems:
        raise MapError("; ".join(problems) + ".")
    return [(categories[c], experts[e]) for c, e in sorted(assignments.items())]


def publish_map(base_version, assignments, note="", user=None, rolled_back_from=None):
    """Create the next map version on top of ``base_version``; raises MapError or StaleMapVersion."""
    pairs = _validate(assignments)
    current = current_version_number() or 0
    if base_version != current:
        raise StaleMapVersion(base_version, current)
    try:
        with transaction.atomic():
            version = MapVersion.objects.create(number=current + 1, author=user, note=note[:500],
                                                rolled_back_from=rolled_back_from)
            MapAssignment.objects.bulk_create(
                [MapAssignment(version=version, category=c, expert=e) for c, e in pairs])
            before = map_assignments(MapVersion.objects.get(number=current)) if current else {}
            AuditEntry.objects.create(
                actor=user, action="rollback" if rolled_back_from else "publish", object_type="map",
                object_name=f"v{version.number}",
                changes={c: [before.get(c), e] for c, e in sorted(assignments.items()) if before.get(c) != e})
    except IntegrityError:  # a concurrent editor took number current+1 first
        raise StaleMapVersion(base_version, current_version_number())
    return version


def rollback_map(version_number, user=None, note=""):
    """Publish a new version equal to ``version_number``'s assignments."""
    try:
        old = MapVersion.objects.get(number=version_number)
    except MapVersion.DoesNotExist:
        raise MapError(f"no map version {version_number}.")
    return publish_map(current_version_number(), map_assignments(old), note or f"rollback to v{version_number}",
                       user, rolled_back_from=version_number)
