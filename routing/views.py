"""Thin views: the home page (current map, active router, route-one-prompt form) and POST /api/route."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from access.api import ApiError, api_view, json_body
from experts.selectors import current_map
from experts.models import Expert

from .selectors import NoActiveRouter, active_router_row
from .services import RoutingInputError, check_prompt, route_prompts


def _route_one(prompt, source):
    try:
        return route_prompts([check_prompt(prompt)], source)[0]
    except NoActiveRouter as exc:
        raise ApiError(503, str(exc))


@login_required
def home(request):
    decision, error, prompt = None, None, ""
    if request.method == "POST":
        prompt = request.POST.get("prompt", "")
        try:
            decision = _route_one(prompt, "page")
        except (RoutingInputError, ApiError) as exc:
            error = getattr(exc, "message", str(exc))
    snapshot = current_map()
    experts = {e.name: e for e in Expert.objects.all()}
    rows = [(c, experts.get(e)) for c, e in sorted(snapshot.assignments.items())] if snapshot else []
    return render(request, "routing/home.html", {
        "map": snapshot, "map_rows": rows, "router": active_router_row(), "decision": decision,
        "error": error, "prompt": prompt,
    }, status=400 if error else 200)


@api_view(["POST"])
def api_route(request):
    data = json_body(request)
    if "prompt" not in data:
        raise ApiError(400, "Missing field 'prompt'.")
    try:
        return _route_one(data["prompt"], "api")
    except RoutingInputError as exc:
        raise ApiError(400, str(exc))
