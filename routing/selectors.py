"""Reads: the active router (cached per process by version), categories and training data."""
import threading

from .engine.router import Router
from .models import Category, RouterModel

_cache = {"version": None, "router": None, "row": None}
_lock = threading.Lock()


class NoActiveRouter(LookupError):
    pass


def active_router():
    """(RouterModel row without the artifact, engine Router). One indexed query when the version is unchanged."""
    from django.conf import settings

    head = RouterModel.objects.filter(is_active=True).values_list("pk", "version", "created_at").first()
    if head is None:
        raise NoActiveRouter("No active router: run `python manage.py train_router`.")
    if _cache["version"] != head:
        with _lock:
            row = RouterModel.objects.get(pk=head[0])
            router = Router.from_bytes(row.artifact, settings.COE_EMBEDDER_PATH or None)
            router.embedder  # load the embedding model now, not inside the first timed request
            _cache.update(version=head, row=row, router=router)
    return _cache["row"], _cache["router"]


def active_router_row():
    return RouterModel.objects.filter(is_active=True).defer("artifact").first()


def active_categories():
    return list(Category.objects.filter(retired=False))


def seed_training_data():
    """(prompts, labels) from the seed prompts of every active category."""
    prompts, labels = [], []
    for category in active_categories():
        for prompt in category.seed_prompts:
            prompts.append(prompt)
            labels.append(category.name)
    return prompts, labels
