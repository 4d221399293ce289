"""Thin views for the simulator pages: run form, run and sweep detail (+ JSON for live updates), downloads,
validation and provenance tabs, and the live twin.  Reading needs a login; starting anything needs staff or
the hwsim.start_simulation permission."""
import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from hwsim.engine import PRESETS, TABLES, ConfigError, chrome_trace, get_machine, to_csv

from . import parameters as P
from . import selectors, services, twin
from .forms import RunForm, TwinForm
from .models import SimulationRun, Sweep


def can_start(user):
    return user.is_staff or user.has_perm("hwsim.start_simulation")


def _require_start(user):
    if not can_start(user):
        raise PermissionDenied("Starting simulations needs staff status or the hwsim.start_simulation permission.")


@login_required
def index(request):
    form = RunForm(request.POST or None)
    status = 200
    if request.method == "POST":
        _require_start(request.user)
        if form.is_valid():
            try:
                if request.POST.get("action") == "compare":
                    sweep = services.create_sweep(form.raw, form.cleaned_data["compare_machines"],
                                                  form.cleaned_data["sweep_policies"], form.maps, request.user)
                    return redirect("hwsim:sweep", pk=sweep.pk)
                run = services.create_run(form.raw, request.user)
                return redirect("hwsim:run", pk=run.pk)
            except ConfigError as exc:
                form.add_error(None, str(exc))
        status = 400
    return render(request, "hwsim/index.html", {
        "form": form, "runs": selectors.recent_runs(), "sweeps": selectors.recent_sweeps(),
        "can_start": can_start(request.user), "tab": "runs"}, status=status)


def _run_status(run):
    return {"run": run.pk, "status": run.status, "done": run.progress_done, "total": run.progress_total,
            "pct": run.progress_pct, "error": run.error, "summary": run.summary}


@login_required
def run_detail(request, pk):
    try:
        run = selectors.run_without_outputs(pk)
    except SimulationRun.DoesNotExist:
        return render(request, "hwsim/missing.html", {"what": f"run {pk}"}, status=404)
    return render(request, "hwsim/run.html", {"run": run, "status": _run_status(run), "tables": TABLES,
                                              "machine_rows": P.machine_provenance(run.parameters), "tab": "runs"})


@login_required
def run_status(request, pk):
    return JsonResponse(_run_status(get_object_or_404(SimulationRun.objects.defer("outputs"), pk=pk)))


@login_required
def run_data(request, pk):
    run = get_object_or_404(SimulationRun, pk=pk)
    return JsonResponse({**_run_status(run), "name": run.name, "parameters": run.parameters,
                         "outputs": run.outputs})


def _done_run(pk):
    run = get_object_or_404(SimulationRun.objects.defer("outputs"), pk=pk)
    if run.status != "done":
        return run, HttpResponse(f"run {pk} is {run.status}; downloads exist once it is done",
                                 status=409, content_type="text/plain")
    return run, None


@login_required
def run_csv(request, pk, table):
    if table not in TABLES:
        return HttpResponse(f"unknown table {table!r}; tables: {', '.join(TABLES)}", status=404,
                            content_type="text/plain")
    run, refused = _done_run(pk)
    if refused:
        return refused
    response = HttpResponse(to_csv(services.rerun(run), table), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="hwsim-run-{pk}-{table}.csv"'
    return response


@login_required
def run_trace(request, pk):
    run, refused = _done_run(pk)
    if refused:
        return refused
    response = HttpResponse(json.dumps(chrome_trace(services.rerun(run))), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="hwsim-run-{pk}-trace.json"'
    return response


@login_required
def sweep_detail(request, pk):
    sweep = get_object_or_404(Sweep, pk=pk)
    runs = selectors.sweep_runs(sweep)
    table = sweep.comparison if sweep.status in ("done", "failed") else services.comparison_table(runs)
    return render(request, "hwsim/sweep.html", {"sweep": sweep, "runs": runs, "table": table, "tab": "runs"})


@login_required
def sweep_status(request, pk):
    sweep = get_object_or_404(Sweep, pk=pk)
    return JsonResponse({"sweep": sweep.pk, "status": sweep.status,
                         "runs": [_run_status(r) for r in selectors.sweep_runs(sweep)]})


@login_required
def validation(request):
    rows, coe = services.validation_table()
    return render(request, "hwsim/validation.html", {"rows": rows, "coe": coe, "tab": "validation"})


@login_required
def provenance(request):
    machines = [get_machine(name) for name in PRESETS]
    return render(request, "hwsim/provenance.html", {
        "machines": [{"name": m.name, "description": m.description, "home_tier": m.home_tier,
                      "rows": m.provenance()} for m in machines], "tab": "provenance"})


@login_required
def twin_page(request):
    state = selectors.twin()
    return render(request, "hwsim/twin.html", {"twin": state, "form": TwinForm(),
                                               "can_start": can_start(request.user), "tab": "twin",
                                               "machine_rows": P.machine_provenance(state.parameters)
                                               if state and state.parameters else []})


@login_required
@require_POST
def twin_start(request):
    _require_start(request.user)
    form = TwinForm(request.POST)
    if form.is_valid():
        try:
            twin.start(form.raw, request.user)
            return redirect("hwsim:twin")
        except ConfigError as exc:
            form.add_error(None, str(exc))
    return render(request, "hwsim/twin.html", {"twin": selectors.twin(), "form": form, "can_start": True,
                                               "tab": "twin"}, status=400)


@login_required
@require_POST
def twin_stop(request):
    _require_start(request.user)
    twin.stop()
    return redirect("hwsim:twin")


@login_required
def twin_state(request):
    """The twin's latest snapshot; in embedded mode (eager Celery, no scheduler) each poll runs one tick."""
    state = selectors.twin()
    if state is not None and state.enabled and twin.polls_drive_ticks():
        twin.tick(state.pk, state.generation)
        state.refresh_from_db()
    if state is None:
        return JsonResponse({"enabled": False, "snapshot": {}, "history": []})
    return JsonResponse({"enabled": state.enabled, "generation": state.generation, "ticks": state.ticks,
                         "position": state.position, "snapshot": state.snapshot, "history": state.history,
                         "error": state.error, "machine": P.machine_label(state.parameters)
                         if state.parameters else ""})
