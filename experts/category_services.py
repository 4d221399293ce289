"""Writes to the taxonomy: add, rename, retire categories and edit their seed prompts.

A category change that affects the map (add, retire) publishes a new map version in the same transaction, so the
map never names a missing category and never misses an active one. Renames keep map rows (they point at the
category's id) but the active router still predicts the old name until it is retrained, so they are flagged.
"""
from django.db import transaction

from coe_site.realtime import publish
from .models import Category
from .selectors import current_map
from .services import FALLBACK_CATEGORY, MapError, audit, clean, publish_map


def _clean_prompts(seed_prompts):
    if not isinstance(seed_prompts, list) or not all(isinstance(p, str) for p in seed_prompts):
        raise MapError("seed prompts must be a list of strings.")
    prompts = [p.strip() for p in seed_prompts if p.strip()]
    return list(dict.fromkeys(prompts))


def _changed(user, action, name, changes):
    audit(user=user, action=action, object_type="category", object_name=name, changes=changes)
    publish("map", "category.changed", {"name": name, "action": action})


def add_category(*, name, expert, base_version, description="", seed_prompts=(), user=None):
    """Create category ``name`` mapped to ``expert`` (a new map version on top of ``base_version``)."""
    with transaction.atomic():
        category = Category.objects.filter(name=name).first()
        if category is not None and not category.retired:
            raise MapError(f"category {name} already exists.")
        prompts = _clean_prompts(list(seed_prompts))
        if category is None:
            category = Category(name=name)
        category.description, category.seed_prompts, category.retired = description, prompts, False
        clean(category)
        category.save()
        snapshot = current_map()
        assignments = {**(snapshot.assignments if snapshot else {}), name: expert}
        publish_map(base_version=base_version, assignments=assignments, note=f"add category {name}", user=user)
        _changed(user, "create", name, {"description": description, "seed_prompts": len(prompts), "expert": expert})
    return category


def update_category(*, name, user=None, new_name=None, description=None, seed_prompts=None):
    """Rename a category and/or change its description or seed prompts (no new map version needed)."""
    with transaction.atomic():
        category = Category.objects.select_for_update().filter(name=name, retired=False).first()
        if category is None:
            raise MapError(f"unknown category: {name}.")
        changes = {}
        if new_name and new_name != name:
            if name == FALLBACK_CATEGORY:
                raise MapError(f"the '{FALLBACK_CATEGORY}' category cannot be renamed.")
            if Category.objects.filter(name=new_name).exists():
                raise MapError(f"category {new_name} already exists.")
            changes["name"] = [name, new_name]
            category.name = new_name
        if description is not None and description != category.description:
            changes["description"] = [category.description, description]
            category.description = description
        if seed_prompts is not None:
            prompts = _clean_prompts(seed_prompts)
            if prompts != category.seed_prompts:
                changes["seed_prompts"] = [len(category.seed_prompts), len(prompts)]
                category.seed_prompts = prompts
        clean(category)
        category.save()
        if changes:
            _changed(user, "update", category.name, changes)
    return category


def retire_category(*, name, base_version, user=None):
    """Retire a category: a new map version without it; its prompts route to ``general`` after retraining."""
    if name == FALLBACK_CATEGORY:
        raise MapError(f"the '{FALLBACK_CATEGORY}' category cannot be retired.")
    with transaction.atomic():
        category = Category.objects.select_for_update().filter(name=name, retired=False).first()
        if category is None:
            raise MapError(f"unknown category: {name}.")
        category.retired = True
        category.save(update_fields=["retired"])
        snapshot = current_map()
        assignments = {c: e for c, e in snapshot.assignments.items() if c != name}
        publish_map(base_version=base_version, assignments=assignments, note=f"retire category {name}", user=user)
        _changed(user, "retire", name, {})
    return category
