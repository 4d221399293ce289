"""Reads of the expert pool and the current map, cached per process by version number.

Finding the current version is one indexed query (``MapVersion.number`` is unique); the assignments are fetched
only when that number changes, so every worker picks up a new map on its next prompt with no flush by hand.
"""
import threading
from dataclasses import dataclass

from .models import Expert, MapAssignment, MapVersion


@dataclass(frozen=True)
class MapSnapshot:
    version: int
    version_id: int
    assignments: dict  # category name → expert name
    expert_ids: dict  # expert name → pk

    def expert_for(self, category, fallback="general"):
        """(expert name, expert pk) for ``category``; an unmapped category uses the fallback's expert."""
        name = self.assignments.get(category) or self.assignments.get(fallback)
        return name, self.expert_ids.get(name)


_cache = {"snapshot": None}
_lock = threading.Lock()


def current_version_number():
    return MapVersion.objects.order_by("-number").values_list("number", flat=True).first()


def current_map():
    """The current MapSnapshot, or None before any map exists."""
    head = MapVersion.objects.order_by("-number").values_list("number", "pk").first()
    if head is None:
        return None
    snap = _cache["snapshot"]
    if snap is not None and (snap.version, snap.version_id) == head:
        return snap
    with _lock:
        rows = MapAssignment.objects.filter(version_id=head[1]).values_list("category__name", "expert__name",
                                                                             "expert_id")
        snap = MapSnapshot(head[0], head[1], {c: e for c, e, _ in rows}, {e: pk for _, e, pk in rows})
        _cache["snapshot"] = snap
    return snap


def map_assignments(version):
    return dict(MapAssignment.objects.filter(version=version).values_list("category__name", "expert__name"))


def experts():
    return list(Expert.objects.all())
