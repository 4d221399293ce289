"""Writes for the designer: import quality tables (all or nothing), link table models to experts, apply a chosen
map through the map service."""
import numpy as np
from django.db import transaction

from experts.selectors import current_map, expert_pool
from experts.services import publish_map
from routing.selectors import active_router

from .engine import (TableError, check_models, parse_category_scores, parse_models, parse_prompt_scores,
                     parse_questions)
from .models import CategoryScore, PromptScore, QualityTable, TableModel, TablePrompt
from .selectors import DesignError, design


class ImportFailed(ValueError):
    """A file that cannot be imported; `errors` are line-numbered messages, each prefixed with its file name."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def _parse(parser, upload, what):
    """Run an engine parser on (filename, bytes), prefixing each line-numbered error with the file name."""
    filename, data = upload
    try:
        return parser(data, filename)
    except TableError as exc:
        raise ImportFailed([f"{filename or what}: {e}" for e in exc.errors])


def _auto_expert(name, experts):
    """The expert whose name or model id is the table's model name (case-insensitive), if exactly one."""
    key = name.lower()
    hits = [e for e in experts if key in (e.name.lower(), e.model_id.lower(), e.model_id.lower().split("/")[-1])]
    return hits[0] if len(hits) == 1 else None


def import_table(*, name, kind, scores, models, questions=None, scale="", user=None):
    """Parse and store a quality table. `scores`, `models`, `questions` are (filename, bytes); per-prompt tables
    need each prompt's text (a `prompt` column, or a questions file) and are categorised by the active router.
    Raises ImportFailed with every problem found; nothing is stored then."""
    if kind not in (QualityTable.PER_PROMPT, QualityTable.PER_CATEGORY):
        raise ImportFailed([f"unknown table kind {kind!r}"])
    name = (name or "").strip() or scores[0]
    infos = _parse(parse_models, models, "models file")
    if kind == QualityTable.PER_PROMPT:
        table = _parse(lambda d, f: parse_prompt_scores(d, f, name=name), scores, "scores file")
    else:
        table = _parse(lambda d, f: parse_category_scores(d, f, name=name), scores, "scores file")
    try:
        check_models(table, infos)
    except TableError as exc:
        raise ImportFailed([f"{scores[0]}: {e}" for e in exc.errors])
    texts, router_version, categories = {}, None, {}
    if kind == QualityTable.PER_PROMPT:
        texts = dict(table.prompts)
        if questions:
            texts.update(_parse(parse_questions, questions, "questions file").prompts)
        lacking = [p for p in table.prompt_ids if p not in texts]
        if lacking:
            raise ImportFailed([f"{scores[0]}: {len(lacking)} prompt(s) have no text (first: {lacking[0]!r}); add a "
                                "'prompt' column or upload a questions file with prompt_id and prompt"])
        row, router = active_router()
        routed = router.route([texts[p] for p in table.prompt_ids])
        categories = {p: r.category for p, r in zip(table.prompt_ids, routed)}
        router_version = row.version
    experts = list(expert_pool())
    with transaction.atomic():
        qt = QualityTable.objects.create(name=name[:120], kind=kind, scale=scale[:120], source_name=scores[0][:255],
                                         router_version=router_version, uploaded_by=user)
        rows = TableModel.objects.bulk_create([
            TableModel(table=qt, name=m, total_params=infos[m].total_params, active_params=infos[m].active_params,
                       expert=_auto_expert(m, experts)) for m in table.models])
        if kind == QualityTable.PER_PROMPT:
            prompts = TablePrompt.objects.bulk_create([
                TablePrompt(table=qt, prompt_id=p, text=texts[p], category=categories[p]) for p in table.prompt_ids],
                batch_size=500)
            PromptScore.objects.bulk_create([
                PromptScore(prompt=prompts[i], model=rows[j], score=float(table.scores[i, j]))
                for i in range(len(prompts)) for j in range(len(rows)) if not np.isnan(table.scores[i, j])],
                batch_size=1000)
        else:
            CategoryScore.objects.bulk_create([
                CategoryScore(table=qt, category=c, model=rows[j], score=float(table.scores[i, j]))
                for i, c in enumerate(table.categories) for j in range(len(rows))
                if not np.isnan(table.scores[i, j])], batch_size=1000)
    return qt


def link_models(*, table, links):
    """Set each table model's expert: `links` maps TableModel pk -> Expert pk (None to unlink)."""
    experts = {e.pk: e for e in expert_pool()}
    with transaction.atomic():
        for model in TableModel.objects.filter(table=table, pk__in=list(links)):
            pk = links[model.pk]
            if pk is not None and pk not in experts:
                raise DesignError(f"no expert with id {pk}.")
            model.expert = experts.get(pk)
            model.save(update_fields=["expert"])


def chosen_map(d, budget):
    """({category: TableModel}, split) of the best map within `budget` (average cost per prompt) for design `d`;
    split is None or (category, TableModel, share) when `d.splits` lets one category be split."""
    if d.splits:
        smap = d.split_front().at_budget(float(budget))
        if smap is None:
            raise DesignError(f"No map costs {budget:g} B or less per prompt.")
        categories = d.problem.categories
        split = None if smap.split is None else (categories[smap.split], d.models[smap.to], smap.share)
        return {c: d.models[e] for c, e in zip(categories, smap.choice)}, split
    front = d.front()
    i = front.at_budget(float(budget))
    if i is None:
        raise DesignError(f"No map costs {budget:g} B or less per prompt: the cheapest costs {front.costs[0]:.2f} B.")
    return {c: d.models[e] for c, e in zip(d.problem.categories, front.choices[i])}, None


def apply_map(*, table, budget, base_version, user, cost="total", freq_source="table", linked_only=False,
              splits=False):
    """Publish the best map at `budget` as a new map version. Categories the table does not cover keep their
    current expert. With `splits`, the map may split one category between two experts (a traffic split in the
    map); the table's categories' earlier splits end, others are kept. Raises DesignError (unlinked models, no map
    within budget), experts.services.MapError (e.g. the table's categories are not the router's) or
    StaleMapVersion (someone published meanwhile)."""
    d = design(table, cost=cost, freq_source=freq_source, linked_only=linked_only, splits=splits)
    chosen, split = chosen_map(d, budget)
    unlinked = sorted({m.name for m in [*chosen.values(), *([split[1]] if split else [])] if m.expert_id is None})
    if unlinked:
        raise DesignError("Link these models to experts first: " + ", ".join(unlinked) + ".")
    snapshot = current_map()
    assignments = dict(snapshot.assignments) if snapshot else {}
    assignments.update({c: m.expert.name for c, m in chosen.items()})
    note = f"designer: table '{table.name}', {budget:g} B {cost} params per prompt, {freq_source} frequencies"
    new_splits = None
    if splits:
        new_splits = {c: s for c, s in (snapshot.splits if snapshot else {}).items()
                      if c not in chosen and assignments.get(c) != s["expert"]}
        if split is not None:
            category, model, share = split
            new_splits[category] = {"expert": model.expert.name, "share": share}
            note += f", {share:.0%} of {category} to {model.expert.name}"
    return publish_map(base_version=base_version, assignments=assignments, note=note, user=user, splits=new_splits)
