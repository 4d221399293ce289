"""Writes to the expert pool and the map: validate, refuse stale bases, version, audit, broadcast on commit.

Checking a change is separate from making it: check_map and check_expert read but never write (a form or an API
shows their MapError / StaleMapVersion / BackendsForbidden), and publish_map / save_expert call them first. Traffic
splits are parsed in one place, clean_splits. Every edit path — the in-app editor, Django admin, the JSON API and
the designer — calls these functions, with keyword arguments.
"""
import math
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from access.roles import can_edit_backends
from coe_site.realtime import publish
from hwsim.engine.presets import PRESETS

from .backends.egress import EgressRefused, check_base_url, check_key_env
from .models import AuditEntry, Expert, MapAssignment, MapVersion
from .selectors import active_categories, current_version_number, map_snapshot

FALLBACK_CATEGORY = "general"
EXPERT_FIELDS = ("model_id", "parameters", "active_parameters", "bytes_per_parameter", "context_length", "enabled",
                 "description", "backend", "base_url", "upstream_model", "api_key_env", "timeout_s", "connect_timeout_s",
                 "first_token_timeout_s", "max_retries", "model_path", "device", "generation", "sim_preset",
                 "sim_time_scale")
# How an expert is served: changing any of these is a backend administrator's power (access.edit_backends), not a map
# editor's — a URL and a key variable decide where prompts and secrets go.
BACKEND_FIELDS = ("backend", "timeout_s", "connect_timeout_s", "first_token_timeout_s", "max_retries", "generation",
                  "base_url", "upstream_model", "api_key_env", "model_path", "device", "sim_preset", "sim_time_scale")
GENERATION_KEYS = {"max_new_tokens", "max_tokens", "temperature", "top_p", "top_k", "min_p", "do_sample",
                   "repetition_penalty", "presence_penalty", "frequency_penalty", "seed", "stop"}


class MapError(ValueError):
    """An invalid map or catalogue edit: unknown or unmapped categories, unknown or disabled experts."""


class BackendsForbidden(PermissionError):
    """A change to an expert's backend settings by someone who may not make it."""


class StaleMapVersion(Exception):
    """The edit was based on a version that is no longer current."""

    def __init__(self, base, current):
        super().__init__(f"Map version {base} is out of date: the current version is {current}. "
                         f"Reload, re-apply your change and save again.")
        self.base, self.current = base, current


def audit(*, user, action, object_type, object_name, changes=None):
    AuditEntry.objects.create(actor=user if getattr(user, "pk", None) else None, action=action,
                              object_type=object_type, object_name=object_name, changes=changes or {})


def clean(obj):
    """Model validation, reported as a MapError the editor, admin and API can show."""
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise MapError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()))


def _plural(words, items):
    return f"{words[0] if len(items) == 1 else words[1]}: {', '.join(items)}"


def _validate(assignments, categories):
    if not isinstance(assignments, dict) or not assignments:
        raise MapError("assignments must be a non-empty object of category → expert.")
    experts = {e.name: e for e in Expert.objects.all()}
    problems = []
    unknown_c = sorted(set(assignments) - set(categories))
    if unknown_c:
        problems.append(_plural(("unknown category", "unknown categories"), unknown_c))
    unknown_e = sorted({str(e) for e in assignments.values()} - set(experts))
    if unknown_e:
        problems.append(_plural(("unknown expert", "unknown experts"), unknown_e))
    disabled = sorted({e for e in assignments.values() if e in experts and not experts[e].enabled})
    if disabled:
        problems.append(_plural(("disabled expert", "disabled experts"), disabled))
    missing = sorted(set(categories) - set(assignments))
    if missing:
        problems.append(_plural(("unmapped category", "unmapped categories"), missing))
    if FALLBACK_CATEGORY not in categories:
        problems.append(f"the '{FALLBACK_CATEGORY}' category must always exist and be mapped")
    if problems:
        raise MapError("; ".join(problems) + ".")
    return [(categories[c], experts[e]) for c, e in sorted(assignments.items())]


SPLITS_SHAPE = 'splits must be an object of category → {"expert": name, "share": fraction}.'


def _split_problem(category, split, assignments, experts):
    """The first thing wrong with one category's split (None if nothing): its shape, then (when ``assignments`` and
    ``experts`` are given) its category and expert, then its share."""
    if not isinstance(split, dict) or set(split) != {"expert", "share"}:
        return f'split of {category} must be {{"expert": name, "share": fraction}}'
    name, share = split["expert"], split["share"]
    if assignments is not None and category not in assignments:
        return f"split of unmapped category {category}"
    if not isinstance(name, str) or (experts is not None and name not in experts):
        return f"split of {category}: unknown expert {name}"
    if experts is not None and not experts[name].enabled:
        return f"split of {category}: disabled expert {name}"
    if assignments is not None and name == assignments[category]:
        return f"split of {category}: {name} already serves the whole category"
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
        return f"split of {category}: share must be a fraction between 0 and 1 (exclusive), got {share!r}"
    return None


def clean_splits(splits, *, assignments=None, experts=None):
    """The one parser of traffic splits: {category: {"expert": name, "share": fraction}} checked and returned with
    float shares, in category order; MapError naming every bad split at once otherwise.

    Without ``assignments`` and ``experts`` (name → Expert) only the shape and the shares are checked (a draft's
    impact preview); with them, also that each category is mapped and its split expert known, enabled and not the
    category's whole expert (publishing)."""
    if not isinstance(splits, dict):
        raise MapError(SPLITS_SHAPE)
    problems, out = [], {}
    for category, split in sorted(splits.items()):
        problem = _split_problem(category, split, assignments, experts)
        if problem:
            problems.append(problem)
        else:
            out[category] = {"expert": split["expert"], "share": float(split["share"])}
    if problems:
        raise MapError("; ".join(problems) + ".")
    return out


def splits_from_percent(rows):
    """Splits typed as percentages, as the editor and the admin take them: ``rows`` of (category, expert, percent);
    rows without an expert are no split. A percent that is not a number is refused here; the shares are checked
    by clean_splits when the map is checked."""
    splits = {}
    for category, expert, percent in rows:
        if not expert:
            continue
        percent = percent.strip() if isinstance(percent, str) else percent
        try:
            share = float(percent) / 100
        except (TypeError, ValueError):
            raise MapError(f"split of {category}: give the share sent to {expert} in percent (0-100), "
                           f"not {percent!r}.")
        splits[category] = {"expert": expert, "share": share}
    return splits


def _kept_splits(before, assignments):
    """The current version's splits that still make sense under new ``assignments``: the category is still mapped
    and its split expert did not become its whole expert (a canary promoted ends its split)."""
    return {c: s for c, s in before.items() if c in assignments and assignments[c] != s["expert"]}


def _active_categories():
    return {c.name: c for c in active_categories()}


@dataclass(frozen=True)
class MapCheck:
    """A map change that passed check_map: what publish_map writes."""
    pairs: list  # [(Category, Expert)] in category order
    splits: dict  # category name → {"expert": name, "share": float}, cleaned
    split_of: dict  # category name → MapAssignment split fields
    previous: object  # the current version's MapSnapshot (None before any map)


def check_map(*, base_version, assignments, splits=None):
    """Check a map change without writing anything: MapError (unknown or unmapped categories, unknown or disabled
    experts, bad splits) or StaleMapVersion (``base_version`` is not the current version), else a MapCheck.

    ``splits`` ({category: {"expert": name, "share": fraction}}) replaces the traffic splits; None keeps the
    current version's splits wherever they still make sense (see _kept_splits)."""
    pairs = _validate(assignments, _active_categories())
    current = current_version_number() or 0
    if base_version != current:
        raise StaleMapVersion(base_version, current)
    previous = map_snapshot(current) if current else None
    if splits is None:
        splits = _kept_splits(previous.splits if previous else {}, assignments)
    experts = {e.name: e for e in Expert.objects.all()}
    cleaned = clean_splits(splits, assignments=assignments, experts=experts)
    split_of = {c: {"split_expert": experts[s["expert"]], "split_share": s["share"]} for c, s in cleaned.items()}
    return MapCheck(pairs, cleaned, split_of, previous)


def publish_map(*, base_version, assignments, note="", user=None, rolled_back_from=None, splits=None):
    """Create the next map version on top of ``base_version`` once check_map passes; raises MapError or
    StaleMapVersion.

    ``splits`` ({category: {"expert": name, "share": fraction}}) replaces the traffic splits; None keeps the
    current version's splits wherever they still make sense (see _kept_splits), so edits that do not know about
    splits (retiring a category, the designer's deterministic maps) lose none."""
    with transaction.atomic():
        checked = check_map(base_version=base_version, assignments=assignments, splits=splits)
        previous, split_of = checked.previous, checked.split_of
        current = previous.version if previous else 0
        before, before_splits = (previous.assignments, previous.splits) if previous else ({}, {})
        try:
            with transaction.atomic():
                version = MapVersion.objects.create(number=current + 1, author=user if getattr(user, "pk", None)
                                                    else None, note=(note or "")[:500],
                                                    rolled_back_from=rolled_back_from)
        except IntegrityError:  # a concurrent editor took number current+1 first
            raise StaleMapVersion(base_version, current_version_number())
        MapAssignment.objects.bulk_create([MapAssignment(version=version, category=c, expert=e,
                                                         **split_of.get(c.name, {})) for c, e in checked.pairs])
        after_splits = checked.splits
        changes = {c: [before.get(c), e] for c, e in sorted(assignments.items()) if before.get(c) != e}
        changes.update({c: [e, None] for c, e in before.items() if c not in assignments})
        split_changes = {c: [before_splits.get(c), after_splits.get(c)]
                         for c in sorted(set(before_splits) | set(after_splits))
                         if before_splits.get(c) != after_splits.get(c)}
        audit(user=user, action="rollback" if rolled_back_from else "publish", object_type="map",
              object_name=f"v{version.number}",
              changes={"note": version.note, "assignments": changes,
                       **({"splits": split_changes} if split_changes else {})})
        event = {"version": version.number, "assignments": dict(sorted(assignments.items())), "splits": after_splits,
                 "author": getattr(user, "username", None), "note": version.note}
        publish("map", "map.changed", event)
        publish("dashboard", "map.changed", event)
    return version


def rollback_map(*, version_number, user=None, note="", base_version=None):
    """Publish a new version equal to ``version_number``'s assignments (on top of ``base_version`` if given)."""
    old = map_snapshot(version_number)
    if old is None:
        raise MapError(f"no map version {version_number}.")
    base = current_version_number() if base_version is None else base_version
    return publish_map(base_version=base, assignments=dict(old.assignments),
                       note=note or f"rollback to v{version_number}", user=user, rolled_back_from=version_number,
                       splits=dict(old.splits))


# field → (kind, low, high): what each expert setting may hold. Numbers must be finite (JSON's NaN and Infinity, or
# strings, would pass a naive "> 0" and break every answer or the simulator later).
EXPERT_NUMBERS = {
    "parameters": ("int", 1, 10**15), "active_parameters": ("int?", 1, 10**15),
    "bytes_per_parameter": ("num", 0.125, 8), "context_length": ("int", 1, 10**8),
    "timeout_s": ("num", 0.001, 86_400), "connect_timeout_s": ("num", 0.001, 3600),
    "first_token_timeout_s": ("num", 0.001, 86_400), "max_retries": ("int", 0, 10),
    "sim_time_scale": ("num", 0, 1000),
}
EXPERT_TEXT = ("model_id", "description", "backend", "base_url", "upstream_model", "api_key_env", "model_path",
               "device", "sim_preset")


def _finite_number(value, kind):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return kind == "num" or isinstance(value, int)


def _expert_values(data):
    """The expert fields in ``data``, each checked for its type and range (MapError naming the field)."""
    values = {field: data[field] for field in EXPERT_FIELDS if field in data}
    for field, (kind, low, high) in EXPERT_NUMBERS.items():
        if field not in values or (kind == "int?" and values[field] is None):
            continue
        value = values[field]
        whole = "a whole number" if kind.startswith("int") else "a number"
        if not _finite_number(value, kind.rstrip("?")) or not low <= value <= high:
            raise MapError(f"{field} must be {whole} from {low:g} to {high:g}, not {value!r}.")
    for field in EXPERT_TEXT:
        if field in values and not isinstance(values[field], str):
            raise MapError(f"{field} must be text, not {type(values[field]).__name__}.")
    if "enabled" in values and not isinstance(values["enabled"], bool):
        raise MapError("enabled must be true or false.")
    if "generation" in values:
        generation = values["generation"]
        if not isinstance(generation, dict):
            raise MapError("generation must be a JSON object, e.g. {\"max_new_tokens\": 256}.")
        unknown = sorted(set(generation) - GENERATION_KEYS)
        if unknown:
            raise MapError(f"unknown generation setting{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                           f"(known: {', '.join(sorted(GENERATION_KEYS))}).")
        bad = sorted(k for k, v in generation.items() if k != "stop" and not isinstance(v, bool)
                     and not _finite_number(v, "num"))
        if bad or not isinstance(generation.get("stop", []), (str, list)):
            raise MapError(f"generation settings must be finite numbers (stop: text or a list of texts): "
                           f"{', '.join(bad) or 'stop'}.")
    return values


def _check_backend(expert):
    """The settings the chosen backend needs, checked before saving (a bad one would fail every answer), and the
    deployment's outbound rules (allowed hosts, allowed key variables: experts.backends.egress).

    Not by building the backend: a local model's directory and torch need only exist where it is served (a GPU
    worker), not in the web process that saves the expert."""
    if expert.backend == "openai" and not expert.base_url:
        raise MapError("an openai backend needs base_url (e.g. http://vllm:8000/v1).")
    try:
        check_key_env(expert.api_key_env, settings.COE_API_KEY_ENV_PREFIX, settings.COE_API_KEY_ENVS)
        if expert.backend == "openai" or expert.base_url:
            check_base_url(expert.base_url, settings.COE_UPSTREAM_ALLOWED_HOSTS)
    except EgressRefused as exc:
        raise MapError(str(exc)) from None
    if expert.backend == "transformers" and not expert.model_path:
        raise MapError("a transformers backend needs model_path: a local model directory.")
    if expert.backend == "simulated":
        if expert.sim_preset not in PRESETS:
            raise MapError(f"unknown sim_preset {expert.sim_preset!r}; presets: {', '.join(PRESETS)}.")


@dataclass(frozen=True)
class ExpertCheck:
    """An expert change that passed check_expert: the expert with the new values set (not saved), the values and
    what they were before ({} for a new expert)."""
    expert: Expert
    values: dict
    before: dict


def _checked_expert(name, data, user, expert):
    values = _expert_values(data)
    if expert is None:
        if "model_id" not in values or "parameters" not in values:
            raise MapError("a new expert needs model_id and parameters.")
        expert = Expert(name=name)
        before = {}
    else:
        before = {f: getattr(expert, f) for f in values}
    changed_backend = sorted(f for f in BACKEND_FIELDS if f in values and values[f] != getattr(expert, f))
    if changed_backend and user is not None and not can_edit_backends(user):
        raise BackendsForbidden(f"changing {', '.join(changed_backend)} needs the expert-backend permission "
                                f"(access.edit_backends): ask a backend administrator.")
    if values.get("enabled") is False and expert.pk:
        used = sorted(MapAssignment.objects.filter(Q(expert=expert) | Q(split_expert=expert),
                                                   version__number=current_version_number())
                      .values_list("category__name", flat=True))
        if used:
            raise MapError(f"expert {name} serves {', '.join(used)} in the current map: map those categories "
                           f"to another expert first.")
    for field, value in values.items():
        setattr(expert, field, value)
    clean(expert)
    _check_backend(expert)
    return ExpertCheck(expert, values, before)


def check_expert(*, name, data, user=None):
    """Check creating or updating expert ``name`` with ``data`` without writing anything: MapError (a field's type
    or range, a new expert without model_id and parameters, disabling an expert the current map uses, model
    validation, the backend's settings and the deployment's outbound rules) or BackendsForbidden (changing how it is
    served, BACKEND_FIELDS, without access.edit_backends; ``user`` None is the system), else an ExpertCheck."""
    return _checked_expert(name, data, user, Expert.objects.filter(name=name).first())


def save_expert(*, name, data, user=None):
    """Create or update expert ``name`` once check_expert's rules pass (on the row locked for the update)."""
    with transaction.atomic():
        checked = _checked_expert(name, data, user, Expert.objects.select_for_update().filter(name=name).first())
        expert, values, before = checked.expert, checked.values, checked.before
        expert.save()
        changes = {f: [before.get(f), v] for f, v in values.items() if before.get(f) != v}
        audit(user=user, action="update" if before else "create", object_type="expert", object_name=name,
              changes=changes)
        publish("map", "expert.changed", {"name": name, "changes": changes})
    return expert
