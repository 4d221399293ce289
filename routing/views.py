"""Thin views: the home page, POST /api/route, batch uploads (page + API), demo control, the map editor's impact
preview and router retraining (they read decisions and train routers, so they live here, above the catalog)."""
import csv
import io
import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from access.api import ApiError, api_view, json_body, require
from access.roles import can_operate
from experts.permissions import can_edit_map
from experts.selectors import current_map, expert_pool, split_label
from experts.services import MapError, clean_splits

from coe_site.exports import spreadsheet_safe
from .selectors import (NoActiveRouter, active_router_row, batch_accuracy, batch_results, impact_preview,
                        pending_chunks, recent_batches, result_fields, visible_batches)
from .training import RetrainingBusy, request_training, training_status
from .services import (BatchRejected, RoutingInputError, check_prompt, create_batch, demo_state, parse_prompt_list,
                       parse_upload, route_prompts, start_demo, stop_demo)


OPERATE = "You need the operator role (the access.operate permission) to route prompts, upload batches or chat."


def _route_one(prompt, source, user):
    require(can_operate(user), OPERATE)
    try:
        return route_prompts(prompts=[check_prompt(prompt)], source=source, user=user)[0]
    except NoActiveRouter as exc:
        raise ApiError(503, str(exc))


@login_required
def home(request):
    decision, error, prompt = None, None, ""
    if request.method == "POST":
        prompt = request.POST.get("prompt", "")
        try:
            decision = _route_one(prompt, "page", request.user)
        except (RoutingInputError, ApiError) as exc:
            error = getattr(exc, "message", str(exc))
    snapshot = current_map()
    experts = {e.name: e for e in expert_pool()}
    rows = [(c, experts.get(e), split_label(snapshot.splits.get(c))) for c, e in sorted(snapshot.assignments.items())] \
        if snapshot else []
    return render(request, "routing/home.html", {
        "map": snapshot, "map_rows": rows, "router": active_router_row(), "decision": decision,
        "error": error, "prompt": prompt, "can_operate": can_operate(request.user),
    }, status=400 if error else 200)


@api_view(["POST"], scope="route")
def api_route(request):
    data = json_body(request)
    if "prompt" not in data:
        raise ApiError(400, "Missing field 'prompt'.")
    try:
        return _route_one(data["prompt"], "api", request.user)
    except RoutingInputError as exc:
        raise ApiError(400, str(exc))


# --- Batches ---------------------------------------------------------------------------------------------------

def _items_from_request(request):
    """Upload → [Item]: a file (multipart ``file``), pasted text (``text``) or a JSON body {"prompts": [...]}."""
    limit = settings.COE_BATCH_MAX_BYTES
    if request.content_type == "application/json":
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
            raise BatchRejected([{"line": 0, "message": f"the request is {request.META['CONTENT_LENGTH']} bytes; "
                                                        f"the limit is {limit} bytes (COE_BATCH_MAX_BYTES)"}])
        data = json_body(request)
        if not isinstance(data.get("answer", False), bool):
            raise BatchRejected([{"line": 0, "message": "'answer' must be true (route and answer) or false (route "
                                                        "only)"}])
        request.coe_answer = data.get("answer", False)
        return parse_prompt_list(data.get("prompts")), str(data.get("name") or "JSON list")
    request.coe_answer = request.POST.get("answer") in ("1", "true", "on")
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size > limit:  # don't read an oversized file into memory
            raise BatchRejected([{"line": 0, "message": f"the file is {upload.size} bytes; the limit is "
                                                        f"{limit} bytes (COE_BATCH_MAX_BYTES)"}])
        return parse_upload(upload.read(), upload.name), upload.name
    text = request.POST.get("text", "")
    if not text.strip():
        raise BatchRejected([{"line": 0, "message": "nothing to upload: choose a file or paste prompts"}])
    return parse_upload(text.encode("utf-8"), "pasted.txt"), "pasted text"


@login_required
def batches(request):
    errors, status = None, 200
    if request.method == "POST":
        if not can_operate(request.user):
            raise PermissionDenied(OPERATE)
        try:
            items, name = _items_from_request(request)
            batch = create_batch(items=items, name=name, user=request.user, answer=request.coe_answer)
            return redirect("batch-detail", batch.pk)
        except BatchRejected as exc:
            errors, status = exc.errors, 400
    return render(request, "routing/batches.html", {
        "batches": recent_batches(request.user), "errors": errors, "limits": _limits(),
        "can_operate": can_operate(request.user)}, status=status)


def _limits():
    return {"max_bytes": settings.COE_BATCH_MAX_BYTES, "max_prompts": settings.COE_BATCH_MAX_PROMPTS,
            "max_prompt_bytes": settings.COE_ROUTE_MAX_BYTES}


@login_required
def batch_detail(request, pk):
    batch = get_object_or_404(visible_batches(request.user), pk=pk)
    return render(request, "routing/batch_detail.html", {
        "batch": batch, "accuracy": batch_accuracy(batch) if batch.labelled else None,
        "errors": batch.errors[:200], "pending": pending_chunks(batch)})


def _batch_or_404(request, pk):
    """The batch if ``request.user`` may see it; someone else's is as absent as a missing one."""
    batch = visible_batches(request.user).filter(pk=pk).first()
    if batch is None:
        raise ApiError(404, f"No batch #{pk}.")
    return batch


@api_view(["POST"], scope="batches")
def api_batches(request):
    require(can_operate(request.user), OPERATE)
    try:
        items, name = _items_from_request(request)
    except BatchRejected as exc:
        raise ApiError(400, "The upload was rejected whole; fix these lines and send it again.",
                       errors=exc.errors)
    batch = create_batch(items=items, name=name, user=request.user, answer=request.coe_answer)
    return {"id": batch.pk, "total": batch.total, "answer": batch.answer}


@api_view(["GET"], scope="batches")
def api_batch(request, pk):
    batch = _batch_or_404(request, pk)
    return {"id": batch.pk, "status": batch.status, "done": batch.done, "total": batch.total,
            "errors": batch.errors, "answer": batch.answer, "accuracy": batch_accuracy(batch) if batch.labelled else None,
            "pending": pending_chunks(batch)}


@api_view(["GET"], scope="batches")
def api_batch_results(request, pk):
    batch = _batch_or_404(request, pk)
    fmt = request.GET.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise ApiError(400, "format must be jsonl or csv.")
    rows = batch_results(batch)
    if fmt == "jsonl":
        body, ctype = (json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "application/x-ndjson"
    else:
        body, ctype = _csv_lines(rows, result_fields(batch)), "text/csv"
    response = StreamingHttpResponse(body, content_type=f"{ctype}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.{fmt}"'
    return response


def _csv_lines(rows, fields):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


# --- Demo traffic ----------------------------------------------------------------------------------------------

@api_view(["GET", "POST"], scope={"POST": "admin"})
def api_demo(request):
    if not request.user.is_staff:
        raise ApiError(403, "Only staff can start or stop demo traffic.")
    if request.method == "GET":
        return demo_state()
    data = json_body(request)
    try:
        if data.get("action") == "stop":
            return stop_demo()
        if data.get("action") != "start":
            raise ApiError(400, "action must be 'start' or 'stop'.")
        rate = float(data.get("rate", 20))
        batch = data.get("batch")
        if not 0 < rate <= 1000:
            raise ApiError(400, "rate must be between 0 and 1000 prompts/s.")
        return start_demo(rate=rate, batch_id=int(batch) if batch not in (None, "") else None)
    except RoutingInputError as exc:
        raise ApiError(409, str(exc))
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"Bad demo settings: {exc}")


# --- The map editor: impact preview and retraining -------------------------------------------------------------

@api_view(["POST"])
def preview_view(request):
    data = json_body(request)
    draft = data.get("assignments")
    if not isinstance(draft, dict) or not all(isinstance(v, str) for v in draft.values()):
        raise ApiError(400, "'assignments' must be an object mapping category names to expert names.")
    n = data.get("n", 1000)
    if not isinstance(n, int) or not 1 <= n <= 100_000:
        raise ApiError(400, "'n' must be an integer between 1 and 100000.")
    try:
        splits = clean_splits(data.get("splits") or {})
    except MapError as exc:
        raise ApiError(400, str(exc))
    return impact_preview(draft, n, splits=splits)


@api_view(["POST"], scope="map:write")
def retrain_view(request):
    if not can_edit_map(request.user):
        raise ApiError(403, "You need the 'edit map' permission (or staff) to change the map.")
    data = json_body(request) if request.body else {}
    override = data.get("override", False)
    if not isinstance(override, bool):
        raise ApiError(400, "'override' must be true or false (a JSON boolean, not a string).")
    try:
        return {"task_id": request_training(user=request.user, override=override).task_id}
    except RetrainingBusy as exc:
        raise ApiError(409, str(exc), task_id=exc.task_id)


@api_view(["GET"])
def retrain_status_view(request, task_id):
    status = training_status(task_id)
    if status is None:
        raise ApiError(404, f"No retraining {task_id!r}.")
    return status
