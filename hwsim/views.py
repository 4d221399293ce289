"""Thin views for the simulator pages: run form, run and sweep detail (+ JSON for live updates), downloads
(streamed from what the worker stored: no request runs the engine), validation and provenance tabs, and the live
twin.  Reading needs a login; starting anything needs staff or the hwsim.start_simulation permission."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from hwsim.engine import PRESETS, TABLES, ConfigError, get_machine

from . import exports
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
                    sweep = services.create_sweep(raw=form.raw, machines=form.cleaned_data["compare_machines"],
                                                  policies=form.cleaned_data["sweep_policies"], maps=form.maps,
                                                  user=request.user)
                    return redirect("hwsim:sweep", pk=sweep.pk)
                run = services.create_run(raw=form.raw, user=request.user)
                return redirect("hwsim:run", pk=run.pk)
            except ConfigError as exc:
                form.add_error(None, str(exc))
        status = 400
    return render(request, "hwsim/index.html", {
        "form": form, "runs": selectors.recent_runs(), "sweeps": selectors.recent_sweeps(),
        "can_start": can_start(request.user), "tab": "runs"}, status=status)


def _run_status(run):
    return {"run": run.pk, "status": run.status, "done": run.progress_done, "total": run.progress_total,
            "pct": run.progress_pct, "error": run.error, "summary": run.summary,
            "downloads": run.exports_status, "downloads_error": run.exports_error}


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


def _refusal(status, message, **extra):
    return JsonResponse({"error": {"message": message, **extra}}, status=status)


def accepts_gzip(request):
    """True when the client's Accept-Encoding takes gzip (q > 0), as every browser's does."""
    weights = {}
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, param = item.partition(";")
        param = param.strip().lower()
        try:
            weights[coding.strip().lower()] = float(param[2:]) if param.startswith("q=") else 1.0
        except ValueError:
            weights[coding.strip().lower()] = 0.0
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def _download(request, pk, name, filename):
    """Stream a stored download: gzip bytes as stored to a client that takes them, inflated piece by piece for
    one that does not. A run without stored downloads gets a 409 that says how to have them prepared."""
    run = SimulationRun.objects.defer("outputs", "parameters").filter(pk=pk).first()
    if run is None:
        return _refusal(404, f"run {pk} does not exist")
    if run.status != "done":
        return _refusal(409, f"run {pk} is {run.status}; downloads exist once it is done")
    prepare = reverse("hwsim:run-prepare-downloads", args=[pk])
    if run.exports_status == "pending":
        response = _refusal(409, f"the downloads of run {pk} are being prepared by a worker; retry shortly")
        response["Retry-After"] = "5"
        return response
    export = selectors.run_export(run, name) if run.exports_status == "ready" else None
    if export is None:
        reason = {"ready": f"{name} is not among them", "failed": f"writing them failed ({run.exports_error})"}.get(
            run.exports_status, "it finished before downloads were stored")
        return _refusal(409, f"run {pk} has no stored downloads: {reason}. Use \"Prepare downloads\" on its page "
                             f"(POST {prepare}): a worker computes them once.", prepare_url=prepare)
    gzip = accepts_gzip(request)
    parts = (exports.astream if isinstance(request, ASGIRequest) else exports.stream)(export, gunzip=not gzip)
    response = StreamingHttpResponse(parts, content_type=exports.content_type(name))
    response["Content-Length"] = str(export.stored if gzip else export.size)
    response["Vary"] = "Accept-Encoding"
    if gzip:
        response["Content-Encoding"] = "gzip"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def run_csv(request, pk, table):
    if table not in TABLES:
        return _refusal(404, f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    return _download(request, pk, f"{table}.csv", f"hwsim-run-{pk}-{table}.csv")


@login_required
def run_trace(request, pk):
    return _download(request, pk, exports.TRACE, f"hwsim-run-{pk}-trace.json")


@login_required
@require_POST
def run_prepare_downloads(request, pk):
    """Queue the one-time writing of a finished run's downloads (a run from before they were stored); any signed-in
    reader may ask, since it happens at most once per run."""
    run = get_object_or_404(SimulationRun.objects.defer("outputs"), pk=pk)
    services.request_exports(run=run)
    return redirect("hwsim:run", pk=pk)


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
            twin.start(raw=form.raw, user=request.user)
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
    """The twin's latest snapshot (read only: its ticks run in workers)."""
    state = selectors.twin()
    if state is None:
        return JsonResponse({"enabled": False, "snapshot": {}, "history": []})
    return JsonResponse({"enabled": state.enabled, "generation": state.generation, "ticks": state.ticks,
                         "position": state.position, "snapshot": state.snapshot, "history": state.history,
                         "error": state.error, "machine": P.machine_label(state.parameters)
                         if state.parameters else ""})
