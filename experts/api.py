"""JSON API for the catalog: the map (read, publish with 409 on a stale base, roll back) and the experts."""
from access.api import ApiError, api_view, json_body, require
from coe_site.errors import OUTAGE

from . import selectors, services
from .backend_registry import merged_breakers
from .permissions import can_edit_map


def _require_editor(request):
    if not can_edit_map(request.user):
        raise ApiError(403, "You need the 'edit map' permission (or staff) to change the map.")


def _map_payload():
    snap = selectors.current_map()
    version = selectors.versions()[0]
    return {"version": snap.version, "assignments": dict(sorted(snap.assignments.items())),
            "splits": dict(sorted(snap.splits.items())),
            "author": version.author.username if version.author else None, "note": version.note,
            "created_at": version.created_at.isoformat(), "rolled_back_from": version.rolled_back_from}


def _int_field(data, name):
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be an integer version number.")
    return value


@api_view(["GET", "POST"], scope={"POST": "map:write"})
def map_view(request):
    if request.method == "GET":
        return _map_payload()
    _require_editor(request)
    data = json_body(request)
    base = _int_field(data, "base_version")
    assignments = data.get("assignments")
    if not isinstance(assignments, dict) or not all(isinstance(v, str) for v in assignments.values()):
        raise ApiError(400, "'assignments' must be an object mapping category names to expert names.")
    note = data.get("note", "")
    if not isinstance(note, str):
        raise ApiError(400, "'note' must be a string.")
    splits = data.get("splits")  # absent: keep the current splits that still apply; {}: none
    try:
        services.publish_map(base_version=base, assignments=assignments, note=note, user=request.user, splits=splits)
    except services.StaleMapVersion as exc:
        raise ApiError(409, str(exc), current_version=exc.current)
    except services.MapError as exc:
        raise ApiError(400, str(exc))
    return _map_payload()


@api_view(["POST"], scope="map:write")
def rollback_view(request):
    _require_editor(request)
    data = json_body(request)
    try:
        services.rollback_map(version_number=_int_field(data, "version"), user=request.user,
                              note=data.get("note") or "")
    except services.MapError as exc:
        raise ApiError(400, str(exc))
    return _map_payload()


def _breakers():
    """Every process's breakers from the shared cache, or None while it (Redis) is unreachable."""
    try:
        return merged_breakers()
    except OUTAGE:
        return None


def _with_health(expert, breakers):
    """An expert's public shape plus its circuit breaker, merged over every process ("closed" if never tripped;
    "unknown" while the shared cache is unreachable)."""
    if breakers is None:
        return {**selectors.expert_dict(expert), "breaker": {"state": "unknown", "reason": "shared cache unreachable"}}
    return {**selectors.expert_dict(expert), "breaker": breakers.get(expert.name, {"state": "closed"})}


@api_view(["GET"])
def experts_view(request):
    breakers = _breakers()
    return {"experts": [_with_health(e, breakers) for e in selectors.experts()]}


@api_view(["GET", "PATCH"], scope={"PATCH": "map:write"})
def expert_view(request, name):
    """GET one expert; PATCH changes its fields, backend settings included (nested under "backend" or flat; those
    need the expert-backend permission and, with a token, the ``admin`` scope)."""
    if request.method == "PATCH":
        _require_editor(request)
        data = json_body(request)
        backend = data.pop("backend", None)
        if isinstance(backend, dict):
            data.update({("backend" if k == "kind" else k): v for k, v in backend.items()})
        elif backend is not None:
            data["backend"] = backend
        if "api_key" in data:
            raise ApiError(400, "API keys are not stored: set api_key_env to the name of an environment variable.")
        unknown = sorted(set(data) - set(services.EXPERT_FIELDS) - {"api_key_set", "simulated"})
        if unknown:
            raise ApiError(400, f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
                                f"settable: {', '.join(services.EXPERT_FIELDS)}.")
        if selectors.expert_by_name(name) is None:
            raise ApiError(404, f"no expert named {name!r}.")
        token = request.auth_token
        require(token is None or token.allows("admin") or not set(data) & set(services.BACKEND_FIELDS),
                "Backend settings need a token with the 'admin' scope.")
        try:
            services.save_expert(name=name, data={k: v for k, v in data.items() if k in services.EXPERT_FIELDS},
                                 user=request.user)
        except services.BackendsForbidden as exc:
            raise ApiError(403, str(exc))
        except services.MapError as exc:
            raise ApiError(400, str(exc))
    expert = selectors.expert_by_name(name)
    if expert is None:
        raise ApiError(404, f"no expert named {name!r}.")
    return _with_health(expert, _breakers())
