"""Pages for the map: the editor (grid, categories, experts and how they are served, retraining), history with diffs
and rollback, audit."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import category_services, selectors, services
from .forms import ExpertBackendForm
from .models import AuditEntry, Expert
from .permissions import can_edit_map
from access.roles import can_edit_backends


def _editor_only(request):
    if not can_edit_map(request.user):
        raise PermissionDenied("You need the 'edit map' permission (or staff) to change the map.")


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value, default=None):
    """A number typed in a form; text that is not one is passed on for the service to refuse with its message."""
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        return value


@login_required
def editor(request):
    snapshot = selectors.current_map()
    draft, splits, error, status = dict(snapshot.assignments), None, None, 200
    if request.method == "POST":
        _editor_only(request)
        categories = [c.name for c in selectors.active_categories()]
        draft = {c: request.POST[f"assign-{c}"] for c in categories if request.POST.get(f"assign-{c}")}
        try:
            splits = _posted_splits(request.POST, categories)
            version = services.publish_map(base_version=_int(request.POST.get("base_version")), assignments=draft,
                                           note=request.POST.get("note", ""), user=request.user, splits=splits)
        except (services.MapError, services.StaleMapVersion) as exc:
            error, status = str(exc), 409 if isinstance(exc, services.StaleMapVersion) else 400
        else:
            messages.success(request, f"Saved map version v{version.number}.")
            return redirect("map-editor")
    base_version = _int(request.POST.get("base_version"), snapshot.version) if error else snapshot.version
    return _editor_page(request, snapshot, draft, base_version, error=error, status=status, splits=splits)


def _posted_splits(post, categories):
    """The editor's split columns ({category: {"expert", "share"}}; shares are typed in percent)."""
    return services.splits_from_percent((c, post.get(f"split-{c}", ""), post.get(f"share-{c}", ""))
                                        for c in categories)


def _editor_page(request, snapshot, draft, base_version, *, error=None, status=200, backend_form=None, splits=None):
    """The editor; ``backend_form``: a submitted expert backend form to show again with its errors; ``splits``:
    the traffic splits to show (the current map's unless a refused draft's)."""
    if splits is None:
        splits = snapshot.splits
    category_rows = [(c, splits[c.name]["expert"] if c.name in splits else None,
                      round(splits[c.name]["share"] * 100, 1) if c.name in splits else None)
                     for c in selectors.active_categories()]
    can_edit, can_backends = can_edit_map(request.user), can_edit_backends(request.user)
    experts = selectors.experts()
    rows = [(e, selectors.expert_dict(e)["backend"],
             (backend_form if backend_form and backend_form.expert.pk == e.pk else ExpertBackendForm(e))
             if can_backends else None) for e in experts]
    return render(request, "experts/editor.html", {
        "map": snapshot, "draft": draft, "error": error, "categories": selectors.active_categories(), "experts": experts,
        "category_rows": category_rows,
        "expert_rows": rows, "can_edit": can_edit, "base_version": base_version,
    }, status=status)


def _catalogue_action(request, action):
    _editor_only(request)
    try:
        message = action(request.POST)
    except services.StaleMapVersion as exc:
        messages.error(request, str(exc))
    except services.MapError as exc:
        messages.error(request, f"Not saved: {exc}")
    else:
        messages.success(request, message)
    return redirect("map-editor")


def _lines(text):
    return [line for line in (text or "").splitlines() if line.strip()]


@login_required
@require_POST
def category_add(request):
    def act(post):
        category_services.add_category(name=post.get("name", "").strip(), expert=post.get("expert", ""),
                                       base_version=_int(post.get("base_version")),
                                       description=post.get("description", ""),
                                       seed_prompts=_lines(post.get("seed_prompts")), user=request.user)
        return f"Added category {post.get('name')}. Retrain the router so it can predict it."
    return _catalogue_action(request, act)


@login_required
@require_POST
def category_update(request, name):
    def act(post):
        category = category_services.update_category(
            name=name, user=request.user, new_name=post.get("new_name", "").strip() or None,
            description=post.get("description"), seed_prompts=_lines(post.get("seed_prompts")))
        return f"Saved category {category.name}. Retrain the router to use the change."
    return _catalogue_action(request, act)


@login_required
@require_POST
def category_retire(request, name):
    def act(post):
        category_services.retire_category(name=name, base_version=_int(post.get("base_version")), user=request.user)
        return f"Retired category {name}; a new map version without it was published."
    return _catalogue_action(request, act)


@login_required
@require_POST
def expert_save(request):
    """The general expert form (add or edit; errors as messages) or, with ``form=backend``, one expert's backend
    settings (errors shown on that form)."""
    if request.POST.get("form") == "backend":
        if not can_edit_backends(request.user):
            raise PermissionDenied("Changing how an expert is served needs the expert-backend permission.")
        form = ExpertBackendForm(get_object_or_404(Expert, name=request.POST.get("name", "")), request.POST)
        if form.save(request.user):
            messages.success(request, f"Saved how {form.expert.name} is served.")
            return redirect(f"{reverse('map-editor')}#expert-{form.expert.name}")
        snapshot = selectors.current_map()
        return _editor_page(request, snapshot, dict(snapshot.assignments), snapshot.version, status=400,
                            backend_form=form)

    def act(post):
        data = {"model_id": post.get("model_id", "").strip(), "parameters": _int(post.get("parameters")),
                "active_parameters": _int(post.get("active_parameters")),
                "bytes_per_parameter": _float(post.get("bytes_per_parameter"), 2.0),
                "context_length": _int(post.get("context_length"), 8192), "enabled": post.get("enabled") == "on",
                "description": post.get("description", "")}
        if data["parameters"] is None:
            raise services.MapError("parameters must be a positive integer.")
        expert = services.save_expert(name=post.get("name", "").strip(), data=data, user=request.user)
        return f"Saved expert {expert.name}."
    return _catalogue_action(request, act)


@login_required
def history(request):
    versions = selectors.versions()
    newest = versions[0].number
    a = _int(request.GET.get("a"), max(newest - 1, 1))
    b = _int(request.GET.get("b"), newest)
    known = {v.number for v in versions}
    diff = selectors.diff_versions(a, b) if a in known and b in known else None
    return render(request, "experts/history.html", {
        "versions": versions, "a": a, "b": b, "diff": diff, "can_edit": can_edit_map(request.user)})


@login_required
@require_POST
def rollback(request):
    _editor_only(request)
    version = _int(request.POST.get("version"))
    try:
        new = services.rollback_map(version_number=version, user=request.user,
                                    base_version=_int(request.POST.get("base_version")))
    except (services.MapError, services.StaleMapVersion) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Rolled back: v{new.number} restores v{version}.")
    return redirect("map-history")


@login_required
def audit_log(request):
    return render(request, "experts/audit.html", {"entries": AuditEntry.objects.select_related("actor")[:300]})
