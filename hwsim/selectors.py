"""Reads for the simulator: experts and map versions (experts app), routed decisions (routing app), runs.

Everything here is read-only. Decisions are read as plain tuples with the prompt's length computed in the
database, so replaying 100k decisions loads prompt text only for a map's split categories.
"""
from django.apps import apps
from django.db.models.functions import Length

from experts.selectors import expert_pool, map_snapshot, map_versions
from routing.selectors import decisions

from .models import LiveTwin, RunExport, SimulationRun, Sweep


class NoSuchData(LookupError):
    """A map version, batch or decision range that does not exist (shown to the user as is)."""


def map_version_number(number=None):
    """The given map version number if it exists, else the current one; NoSuchData if there is none."""
    qs = map_versions()
    if number is not None:
        qs = qs.filter(number=number)
    found = qs.values_list("number", flat=True).first()
    if found is None:
        raise NoSuchData(f"map version {number} does not exist" if number is not None else "no map exists yet")
    return found


def map_experts(number):
    """(the experts app's MapSnapshot of version `number`, [{"name", "params", "bytes_per_param"}] of every expert
    it sends traffic to, split experts included)."""
    snap = map_snapshot(number)
    names = set(snap.assignments.values()) | {s["expert"] for s in snap.splits.values()}
    specs = [{"name": n, "params": float(p), "bytes_per_param": float(b)}
             for n, p, b in expert_pool().filter(name__in=names).order_by("name")
             .values_list("name", "parameters", "bytes_per_parameter")]
    return snap, specs


def prompts_of(ids):
    """{decision id: prompt text} for `ids` (only the decisions a traffic split needs to re-decide)."""
    prompts = {}
    for start in range(0, len(ids), 2000):
        prompts.update(decisions().filter(id__in=ids[start:start + 2000]).values_list("id", "prompt"))
    return prompts


def pool_experts():
    """Every expert in the pool as engine expert dicts (the live twin simulates all of them)."""
    return [{"name": n, "params": float(p), "bytes_per_param": float(b)}
            for n, p, b in expert_pool().order_by("name")
            .values_list("name", "parameters", "bytes_per_parameter")]


def recent_decision_range(count):
    """(first id, last id, n) of the last `count` routed decisions; NoSuchData when there are none."""
    ids = list(decisions().order_by("-id").values_list("id", flat=True)[:count])
    if not ids:
        raise NoSuchData("no routed decisions to replay yet: route some prompts first")
    return ids[-1], ids[0], len(ids)


def batch_model():
    """routing.Batch if that model exists in this deployment, else None (it arrives with issue 3)."""
    try:
        return apps.get_model("routing", "Batch")
    except LookupError:
        return None


def _batch_link():
    """Name of RoutingDecision's foreign key to routing.Batch, or None when there is no such link."""
    batch = batch_model()
    if batch is None:
        return None
    for field in decisions().model._meta.get_fields():
        if getattr(field, "many_to_one", False) and field.related_model is batch:
            return field.name
    return None


def batch_decision_count(batch_id):
    """Decisions routed for batch `batch_id`; NoSuchData with a reason when that cannot be answered."""
    batch = batch_model()
    if batch is None:
        raise NoSuchData("batches do not exist in this deployment yet (routing.Batch is missing); "
                         "use replay:recent or replay:recent:N to replay the last N routed decisions")
    link = _batch_link()
    if link is None:
        raise NoSuchData("routing.Batch exists but routing decisions do not reference it")
    if not batch.objects.filter(pk=batch_id).exists():
        raise NoSuchData(f"batch {batch_id} does not exist")
    count = decisions().filter(**{f"{link}_id": batch_id}).count()
    if not count:
        raise NoSuchData(f"batch {batch_id} has no routed decisions yet")
    return count


def _decision_rows(qs):
    return qs.order_by("id").annotate(chars=Length("prompt")).values_list(
        "id", "created_at", "category", "expert__name", "chars")


def decisions_in_range(first_id, last_id):
    """(id, created_at, category, expert name, prompt chars) for first_id <= id <= last_id, in id order."""
    return _decision_rows(decisions().filter(id__gte=first_id, id__lte=last_id))


def batch_decisions(batch_id):
    return _decision_rows(decisions().filter(**{f"{_batch_link()}_id": batch_id}))


def decisions_after(position, limit, upto=None):
    """The next `limit` decisions after id `position` (and up to `upto` when given), in id order."""
    qs = decisions().filter(id__gt=position)
    if upto is not None:
        qs = qs.filter(id__lte=upto)
    return list(_decision_rows(qs)[:limit])


def latest_decision_id():
    return decisions().order_by("-id").values_list("id", flat=True).first() or 0


def recent_runs(limit=30):
    return list(SimulationRun.objects.filter(sweep=None).defer("outputs")[:limit])


def recent_sweeps(limit=10):
    return list(Sweep.objects.all()[:limit])


def run_without_outputs(pk):
    return SimulationRun.objects.defer("outputs").get(pk=pk)


def run_export(run, name):
    """The stored download `name` of a finished run (the set its winning claim wrote), or None."""
    return RunExport.objects.filter(run=run, token=run.exports_token, name=name).first()


def sweep_runs(sweep):
    return list(sweep.runs.defer("outputs").order_by("id"))


def twin(name="default"):
    return LiveTwin.objects.filter(name=name).first()
