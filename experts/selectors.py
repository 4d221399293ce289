"""Reads of the expert pool and the current map, cached per process by version number.

Finding the current version is one indexed query (``MapVersion.number`` is unique); the assignments are fetched
only when that number changes, so every worker picks up a new map on its next prompt with no flush by hand. The
chat endpoint's expert rows are cached too, dropped on every expert or map change (``experts_named``).
"""
import os
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models.signals import post_delete, post_migrate, post_save

from coe_site import invalidation
from designer.engine.splits import stable_keys

from .models import Category, Expert, MapAssignment, MapVersion


def active_categories():
    """The categories routers may predict and the map must cover (retired ones are kept for old decisions)."""
    return list(Category.objects.filter(retired=False))


def split_key(prompt):
    """A prompt's place in [0, 1) for traffic splits: a stable hash of its text, so the same prompt always goes to
    the same expert (on every worker and after a restart), and the designer's evaluations route exactly so."""
    return float(stable_keys([prompt])[0])


@dataclass(frozen=True)
class MapSnapshot:
    version: int
    version_id: int
    assignments: dict  # category name → expert name
    expert_ids: dict  # expert name → pk
    splits: dict = field(default_factory=dict)  # category name → {"expert": name, "share": fraction}

    def serving_category(self, category, fallback="general"):
        """The category whose entry serves ``category``: itself if mapped, else the fallback."""
        return category if self.assignments.get(category) else fallback

    def expert_for(self, category, fallback="general", prompt=None):
        """(expert name, expert pk) for ``category``; an unmapped category uses the fallback's expert (and split).
        A split category sends ``prompt`` to its split expert when the prompt's key is below the share."""
        category = self.serving_category(category, fallback)
        name = self.assignments.get(category)
        split = self.splits.get(category)
        if split is not None and prompt is not None and split_key(prompt) < split["share"]:
            name = split["expert"]
        return name, self.expert_ids.get(name)


_cache = {"snapshot": None}
_lock = threading.Lock()


def current_version_number():
    return MapVersion.objects.order_by("-number").values_list("number", flat=True).first()


def current_map(head=None):
    """The current MapSnapshot, or None before any map exists. ``head``: the newest version's (number, pk) when the
    caller has just read it (routing.selectors.serving_heads), saving the query."""
    if head is None:
        head = MapVersion.objects.order_by("-number").values_list("number", "pk").first()
    if head is None:
        return None
    snap = _cache["snapshot"]
    if snap is not None and (snap.version, snap.version_id) == head:
        return snap
    with _lock:
        snap = _cache["snapshot"] = _snapshot(*head)
    return snap


def map_snapshot(number):
    """The MapSnapshot of version ``number`` (None if there is none): replaying traffic on an older map."""
    head = MapVersion.objects.filter(number=number).values_list("number", "pk").first()
    return _snapshot(*head) if head else None


def _snapshot(number, pk):
    rows = MapAssignment.objects.filter(version_id=pk).values_list(
        "category__name", "expert__name", "expert_id", "split_expert__name", "split_expert_id", "split_share")
    ids = {e: pk for _, e, pk, *_ in rows} | {e: pk for *_, e, pk, _ in rows if e}
    return MapSnapshot(number, pk, {c: e for c, e, *_ in rows}, ids,
                       {c: {"expert": e, "share": share} for c, _, _, e, _, share in rows if e})


def split_label(split):
    """'expert 12.5%' for a split ({"expert", "share"})."""
    return f"{split['expert']} {round(split['share'] * 100, 1):g}%" if split else None


def experts():
    return list(Expert.objects.all())


def expert_pool():
    """Every expert as a queryset, for other apps to iterate, filter or order (one query when evaluated). The
    ``Expert`` class imported here is what they use for type hints: other apps read this app through this module."""
    return Expert.objects.all()


def map_versions():
    """Every map version, newest first, as a queryset for other apps to narrow or embed as a subquery."""
    return MapVersion.objects.order_by("-number")


def experts_named(names):
    """{name: Expert} for those of ``names`` that exist, fresh instances each call, cached per process for the chat
    endpoint: an entry is dropped when an expert or the map changes — in this process at once, in the others when the
    bus delivers the map services' announcement — and never served after COE_EXPERT_CACHE_S (the bound for a change
    made by SQL) nor while the process's bus subscription is down (coe_site.invalidation)."""
    found, missing = {}, []
    for name in names:
        values = _rows.get(name)
        if values is None:
            missing.append(name)
        else:
            found[name] = invalidation.instance(Expert, values)
    if missing:
        stamp = _rows.stamp()
        for expert in Expert.objects.filter(name__in=missing).order_by():
            _rows.put(expert.name, invalidation.row_values(expert), stamp)
            found[expert.name] = expert
    return found


def _drop_cached_experts(sender, **kwargs):
    invalidation.watch.bump("map")


_rows = invalidation.Cache(invalidation.watch, "map", lambda: settings.COE_EXPERT_CACHE_S)
post_save.connect(_drop_cached_experts, sender=Expert, dispatch_uid="expert-cache-save")
post_delete.connect(_drop_cached_experts, sender=Expert, dispatch_uid="expert-cache-delete")
post_migrate.connect(_drop_cached_experts, dispatch_uid="expert-cache-flush")  # also sent when tables are flushed


def expert_by_name(name):
    return Expert.objects.filter(name=name).first()


def versions():
    return list(MapVersion.objects.select_related("author").order_by("-number"))


def diff_versions(a, b):
    """Rows (category, expert in a, expert in b, changed) for two version numbers, all categories of either."""
    left, right = map_snapshot(a), map_snapshot(b)

    def shown(snap, category):
        expert, split = snap.assignments.get(category), snap.splits.get(category)
        return expert if expert is None or split is None else f"{expert} (split: {split_label(split)})"

    rows = [(c, shown(left, c), shown(right, c)) for c in sorted(set(left.assignments) | set(right.assignments))]
    return [(c, l_, r_, l_ != r_) for c, l_, r_ in rows]


def expert_dict(expert):
    """The public shape of an expert and its backend. The API key is never shown: only whether its variable is set."""
    return {
        "name": expert.name, "model_id": expert.model_id, "parameters": expert.parameters,
        "active_parameters": expert.active_parameters, "bytes_per_parameter": expert.bytes_per_parameter,
        "context_length": expert.context_length, "enabled": expert.enabled, "description": expert.description,
        "backend": {
            "kind": expert.backend, "simulated": expert.simulated, "base_url": expert.base_url,
            "upstream_model": expert.upstream_model, "api_key_env": expert.api_key_env,
            "api_key_set": bool(expert.api_key_env and os.environ.get(expert.api_key_env)),
            "timeout_s": expert.timeout_s, "connect_timeout_s": expert.connect_timeout_s,
            "first_token_timeout_s": expert.first_token_timeout_s, "max_retries": expert.max_retries,
            "model_path": expert.model_path, "device": expert.device, "generation": expert.generation,
            "sim_preset": expert.sim_preset, "sim_time_scale": expert.sim_time_scale,
        },
    }
