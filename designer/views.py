"""Thin views: import tables, the design page (heat-map, Pareto plot, budget slider), link models, apply a map."""
import math

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from experts.selectors import current_version_number, expert_pool
from experts.services import MapError, StaleMapVersion
from routing.selectors import NoActiveRouter

from .models import QualityTable
from .selectors import COSTS, FREQ_SOURCES, DesignError, chart_data, design, table_models, tables
from .services import ImportFailed, apply_map, import_table, link_models

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def can_apply(user):
    return user.is_staff or user.has_perm("experts.edit_map")


def _upload(request, field):
    f = request.FILES.get(field)
    if f is None:
        return None
    if f.size > MAX_UPLOAD_BYTES:
        raise ImportFailed([f"{f.name}: {f.size} bytes is over the {MAX_UPLOAD_BYTES} byte limit"])
    return f.name, f.read()


@login_required
def index(request):
    errors, form = [], {"kind": QualityTable.PER_PROMPT}
    if request.method == "POST":
        form = request.POST
        try:
            scores, models = _upload(request, "scores"), _upload(request, "models")
            if scores is None or models is None:
                raise ImportFailed(["choose a scores file and a models file"])
            qt = import_table(name=form.get("name", ""), kind=form.get("kind", ""), scale=form.get("scale", ""),
                              scores=scores, models=models, questions=_upload(request, "questions"),
                              user=request.user)
            return redirect("designer:table", pk=qt.pk)
        except ImportFailed as exc:
            errors = exc.errors
        except NoActiveRouter as exc:
            errors = [str(exc)]
    return render(request, "designer/index.html", {"tables": tables(), "errors": errors, "form": form,
                                                   "kinds": QualityTable.KINDS}, status=400 if errors else 200)


def _options(params):
    cost = params.get("cost", "total")
    freq = params.get("freq", "table")
    return {"cost": cost if cost in COSTS else "total", "freq_source": freq if freq in FREQ_SOURCES else "table",
            "linked_only": params.get("linked") == "1", "splits": params.get("split") == "1"}


def _render_table(request, qt, options, message="", error="", status=200):
    data, design_error = None, ""
    try:
        data = chart_data(design(qt, **options))
    except DesignError as exc:
        design_error = str(exc)
    return render(request, "designer/table.html", {
        "table": qt, "models": table_models(qt), "experts": expert_pool(), "data": data,
        "design_error": design_error, "options": options, "costs": COSTS, "freq_sources": FREQ_SOURCES,
        "can_apply": can_apply(request.user), "map_version": current_version_number() or 0,
        "message": message, "error": error,
    }, status=status)


@login_required
def table(request, pk):
    qt = get_object_or_404(QualityTable, pk=pk)
    return _render_table(request, qt, _options(request.GET), message=request.GET.get("applied", "") and
                         f"Published map version v{request.GET['applied']}.")


@login_required
@require_POST
def link(request, pk):
    if not can_apply(request.user):
        raise PermissionDenied("Linking models to experts needs the edit_map permission.")
    qt = get_object_or_404(QualityTable, pk=pk)
    links = {}
    for model in table_models(qt):
        value = request.POST.get(f"expert-{model.pk}", "")
        links[model.pk] = int(value) if value.isdigit() else None
    try:
        link_models(table=qt, links=links)
    except DesignError as exc:
        return _render_table(request, qt, _options(request.POST), error=str(exc), status=400)
    return redirect(reverse("designer:table", args=[pk]) + "?" + request.POST.get("query", ""))


@login_required
@require_POST
def apply(request, pk):
    if not can_apply(request.user):
        raise PermissionDenied("Applying a map needs staff status or the edit_map permission.")
    qt = get_object_or_404(QualityTable, pk=pk)
    options = _options(request.POST)
    try:
        budget, base = float(request.POST["budget"]), int(request.POST["base_version"])
        if not math.isfinite(budget) or budget <= 0:
            raise ValueError(budget)
    except (KeyError, ValueError):
        return _render_table(request, qt, options, status=400,
                             error="The form needs a positive, finite budget (parameters) and a base version.")
    try:
        version = apply_map(table=qt, budget=budget, base_version=base, user=request.user, **options)
    except StaleMapVersion as exc:
        return _render_table(request, qt, options, error=str(exc), status=409)
    except (DesignError, MapError) as exc:
        return _render_table(request, qt, options, error=f"Map not applied: {exc}", status=400)
    query = "&".join(f"{k}={v}" for k, v in (("cost", options["cost"]), ("freq", options["freq_source"]),
                                             ("linked", int(options["linked_only"])),
                                             ("split", int(options["splits"])), ("applied", version.number)))
    return redirect(reverse("designer:table", args=[pk]) + "?" + query)
