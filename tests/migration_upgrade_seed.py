"""Seed and check halves of tests/test_migration_upgrade.py, run in subprocesses (not collected by pytest).

``seed``: run with an *old* tree (a ``git archive`` of the base commit) as the working directory, on a database that
tree migrated. It creates at least one row in every model of the project apps, with foreign keys between them, plus a
user in two role groups holding one direct permission per model, and prints one JSON record: for each db_table its
row count and every row's columns (long values as hashes); which rows the seed made; which table each foreign-key
column points at; the permissions the user holds.

``check RECORD``: run with the *new* tree as the working directory, after its ``migrate`` on the same database. For
every recorded db_table it finds the model that owns the table now (by ``_meta.db_table``, so a model that moved to
another app is found), reads the rows through the ORM and compares them with the record; it follows every recorded
foreign key through the ORM, and checks that the user still has each permission on the model that now owns the table.

Both are started as ``python -c "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')" THIS_FILE …``
so that ``sys.path[0]`` is the working directory (the tree under test), not this file's folder.
"""
import base64
import datetime
import decimal
import hashlib
import json
import os
import sys
import uuid
from pathlib import Path

PROJECT_APPS = ("access", "routing", "experts", "hwsim", "designer")
# Tables outside the project apps whose rows the upgrade must keep as they are.
AUTH_TABLES = ("auth_user", "auth_group", "auth_user_groups")
MAX_ROWS = 1000  # rows recorded per table (the seeded tables hold a few dozen)
LONG = 200  # values whose JSON is longer than this are recorded as a hash


def setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coe_site.settings")
    import django

    django.setup()
    import coe_site

    here = Path.cwd().resolve()
    loaded = Path(coe_site.__file__).resolve()
    if not loaded.is_relative_to(here):
        sys.exit(f"coe_site was imported from {loaded}, not from the tree under test {here}: check sys.path")


def normalise(value):
    """A JSON-able, comparable form of a column's value (the same in both runs for an unchanged row)."""
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, (bytes, bytearray)):
        value = {"bytes": base64.b64encode(bytes(value)).decode()}
    elif isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        value = value.isoformat()
    elif isinstance(value, (decimal.Decimal, uuid.UUID)):
        value = str(value)
    text = json.dumps(value, sort_keys=True)
    if len(text) > LONG:
        return {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    return value


def columns(model):
    """{column: attname} of the model's concrete columns."""
    return {f.column: f.attname for f in model._meta.concrete_fields}


def read_rows(model, cols):
    """The first MAX_ROWS rows by primary key, as {column: normalised value}, read through the ORM."""
    attnames = [columns(model)[c] for c in cols]
    pk = model._meta.pk.attname
    return [{c: normalise(v) for c, v in zip(cols, row)}
            for row in model._base_manager.order_by(pk).values_list(*attnames)[:MAX_ROWS]]


def project_models():
    from django.apps import apps

    return [m for m in apps.get_models(include_auto_created=True)
            if m._meta.app_label in PROJECT_APPS and m._meta.managed and not m._meta.proxy]


def recorded_models():
    from django.apps import apps

    auth = [m for m in apps.get_models(include_auto_created=True) if m._meta.db_table in AUTH_TABLES]
    return project_models() + auth


# --- seed (old tree) -----------------------------------------------------------------------------------------------

def seed():
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType
    from django.db import transaction
    from django.db.models import Max

    from access.models import ApiToken
    from designer.models import CategoryScore, PromptScore, QualityTable, TableModel, TablePrompt
    from experts.models import AuditEntry, Expert, ExpertCall, MapAssignment, MapVersion
    from hwsim.models import LiveTwin, RunExport, RunExportPart, SimulationRun, Sweep
    from routing.models import Batch, BatchChunk, Category, RouterModel, RouterTraining, RoutingDecision

    made = {}

    def keep(obj):
        made.setdefault(obj._meta.db_table, []).append(obj.pk)
        return obj

    def next_number(model, field):
        return (model.objects.aggregate(n=Max(field))["n"] or 0) + 1

    with transaction.atomic():
        user = keep(User.objects.create_user("upgrade-user", password="upgrade-pass-123", email="u@example.com"))
        user.groups.add(Group.objects.get(name="Map editors"), Group.objects.get(name="Auditors"))
        for model in project_models():  # one direct permission per model: must survive a model's move to another app
            perm = Permission.objects.filter(content_type=ContentType.objects.get_for_model(model),
                                             codename=f"view_{model._meta.model_name}").first()
            if perm:
                user.user_permissions.add(perm)

        keep(ApiToken.objects.create(user=user, key_hash=hashlib.sha256(b"upgrade-token").hexdigest(),
                                     prefix="upgr", name="upgrade", scopes=["read", "route"]))

        category = keep(Category.objects.create(name="upgrade-category", description="made by the upgrade test",
                                                seed_prompts=["what is an upgrade?"]))
        expert = keep(Expert.objects.create(name="upgrade-expert", model_id="org/upgrade-7b", parameters=7_000_000_000))
        other = keep(Expert.objects.create(name="upgrade-expert-b", model_id="org/upgrade-70b",
                                           parameters=70_000_000_000, active_parameters=12_000_000_000))
        version = keep(MapVersion.objects.create(number=next_number(MapVersion, "number"), author=user,
                                                 note="upgrade test"))
        assignment = keep(MapAssignment.objects.create(version=version, category=category, expert=expert,
                                                       split_expert=other, split_share=0.25))
        keep(AuditEntry.objects.create(actor=user, action="create", object_type="expert", object_name=expert.name,
                                       changes={"name": [None, expert.name]}))

        router = keep(RouterModel.objects.create(
            version=next_number(RouterModel, "version"), is_active=False, embedder_id="upgrade-embedder",
            classifier="logistic", categories=[category.name], training_data_hash="0" * 64, training_size=1,
            artifact=b"\x00upgrade-artifact\xff", created_by=user))
        batch = keep(Batch.objects.create(created_by=user, name="upgrade.jsonl", status="done", total=1, done=1))
        keep(BatchChunk.objects.create(batch=batch, index=0, items=[[1, "what is an upgrade?", "x-1", ""]],
                                       status="done", attempts=1))
        decision = keep(RoutingDecision.objects.create(
            source="batch", user=user, prompt="what is an upgrade?", category=category.name,
            predicted_category=category.name, confidence=0.75, probabilities=[[category.name, 0.75]], entropy=0.25,
            margin=0.5, expert=expert, map_version=version, router=router, latency_ms=1.5, batch=batch, line=1,
            external_id="x-1", answered_by=other, answer_fallback_reason="timeout"))
        keep(RouterTraining.objects.create(task_id=str(uuid.uuid4()), requested_by=user, status="done", active=False,
                                           result={"version": router.version}))
        call = keep(ExpertCall.objects.create(
            source="batch", user=user, decision=decision, requested_model="coe", primary=expert, expert=other,
            status="fallback", fallback_reason="timeout", attempts=[{"expert": expert.name, "error": "timeout"}],
            ttft_ms=12.5, total_ms=40.0, prompt_tokens=5, completion_tokens=7, response="an upgrade is …"))

        sweep = keep(Sweep.objects.create(name="upgrade sweep", created_by=user, status="done"))
        run = keep(SimulationRun.objects.create(name="upgrade run", parameters={"seed": 1}, sweep=sweep,
                                                created_by=user, status="done", summary={"requests": 1}))
        export = keep(RunExport.objects.create(run=run, token="upgrade-claim", name="requests.csv", size=3, stored=3,
                                               parts=1))
        keep(RunExportPart.objects.create(export=export, index=0, data=b"a,b"))
        keep(LiveTwin.objects.create(name="upgrade-twin", parameters={"preset": "sn40l-16"}, position=decision.pk))

        table = keep(QualityTable.objects.create(name="upgrade table", kind=QualityTable.PER_PROMPT, scale="1-10",
                                                 source_name="upgrade.csv", router_version=router.version,
                                                 uploaded_by=user))
        table_model = keep(TableModel.objects.create(table=table, name="upgrade-7b", total_params=7.0,
                                                     active_params=7.0, expert=expert))
        prompt = keep(TablePrompt.objects.create(table=table, prompt_id="p-1", text="what is an upgrade?",
                                                 category=category.name))
        keep(PromptScore.objects.create(prompt=prompt, model=table_model, score=8.5))
        keep(CategoryScore.objects.create(table=table, category=category.name, model=table_model, score=7.25))

    empty = [m._meta.label for m in project_models() if not m._base_manager.exists()]
    if empty:
        sys.exit(f"the seed left these models without rows: {empty}")

    tables, fks = {}, {}
    for model in recorded_models():
        cols = sorted(columns(model))
        tables[model._meta.db_table] = {"model": model._meta.label, "pk": model._meta.pk.column,
                                        "count": model._base_manager.count(), "rows": read_rows(model, cols)}
        fks[model._meta.db_table] = {f.column: f.related_model._meta.db_table
                                     for f in model._meta.concrete_fields if f.is_relation}
    perms = sorted({(p.content_type.model_class()._meta.db_table, p.codename)
                    for p in Permission.objects.filter(user=user) | Permission.objects.filter(group__user=user)
                    if p.content_type.model_class() is not None})
    print(json.dumps({
        "tables": tables, "fks": fks, "made": made, "user": user.pk, "permissions": perms,
        "named": {"decision": decision.pk, "call": call.pk, "assignment": assignment.pk, "expert": expert.name,
                  "answered_by": other.name, "category": category.name, "map_version": version.number,
                  "router": router.version, "batch": batch.pk},
    }))


# --- check (new tree) ----------------------------------------------------------------------------------------------

def owner_of(table):
    """The model of the current code that owns ``table`` (a managed one if several name it)."""
    from django.apps import apps

    owners = [m for m in apps.get_models(include_auto_created=True)
              if m._meta.db_table == table and not m._meta.proxy]
    owners.sort(key=lambda m: not m._meta.managed)
    return owners[0] if owners else None


def check(record_path):
    from django.contrib.auth.models import User

    record = json.loads(Path(record_path).read_text())
    problems = []
    models = {}
    for table, old in record["tables"].items():
        model = owner_of(table)
        if model is None:
            problems.append(f"{table}: no model of the new code has this db_table (was {old['model']})")
            continue
        models[table] = model
        count = model._base_manager.count()
        if count != old["count"]:
            problems.append(f"{table} ({model._meta.label}, was {old['model']}): {count} rows, was {old['count']}")
        now_cols = columns(model)
        old_cols = sorted(old["rows"][0]) if old["rows"] else []
        gone = [c for c in old_cols if c not in now_cols]
        if gone:
            problems.append(f"{table} ({model._meta.label}): columns {gone} are no longer a field of the model")
        kept = [c for c in old_cols if c in now_cols]
        if kept:
            pk = old["pk"]
            now = {r[pk]: r for r in read_rows(model, kept)}
            for row in old["rows"]:
                new = now.get(row[pk])
                if new is None:
                    problems.append(f"{table}: row {pk}={row[pk]} is gone")
                    continue
                changed = {c: (row[c], new[c]) for c in kept if row[c] != new[c]}
                if changed:
                    problems.append(f"{table}: row {pk}={row[pk]} changed (old, new): {changed}")

    # Every seeded foreign key, followed through the ORM, reaches the row (and table) it reached before.
    for table, pks in record["made"].items():
        model = models.get(table)
        if model is None:
            continue
        pk_col = record["tables"][table]["pk"]
        old_rows = {r[pk_col]: r for r in record["tables"][table]["rows"]}
        by_column = {f.column: f for f in model._meta.concrete_fields}
        for pk in pks:
            obj = model._base_manager.filter(pk=pk).first()
            if obj is None:
                continue  # reported above
            for column, target in record["fks"][table].items():
                field = by_column.get(column)
                if field is None:
                    continue  # reported above
                if not field.is_relation:
                    problems.append(f"{table}.{column} is no longer a foreign key (it pointed at {target})")
                    continue
                related = getattr(obj, field.name)
                want = old_rows[pk][column]
                got = None if related is None else related.pk
                if got != want or (related is not None and related._meta.db_table != target):
                    where = None if related is None else related._meta.db_table
                    problems.append(f"{table} row {pk}: {field.name} reaches {where} {got}, was {target} {want}")

    named = record["named"]
    if not problems:
        decision = models["routing_routingdecision"]._base_manager.get(pk=named["decision"])
        call = models["experts_expertcall"]._base_manager.get(pk=named["call"])
        assignment = models["experts_mapassignment"]._base_manager.get(pk=named["assignment"])
        facts = {
            "decision.expert.name": (decision.expert.name, named["expert"]),
            "decision.answered_by.name": (decision.answered_by.name, named["answered_by"]),
            "decision.map_version.number": (decision.map_version.number, named["map_version"]),
            "decision.router.version": (decision.router.version, named["router"]),
            "decision.batch_id": (decision.batch_id, named["batch"]),
            "decision.user.username": (decision.user.username, "upgrade-user"),
            "call.decision_id": (call.decision_id, named["decision"]),
            "call.decision.expert.name": (call.decision.expert.name, named["expert"]),
            "assignment.category.name": (assignment.category.name, named["category"]),
            "assignment.split_expert.name": (assignment.split_expert.name, named["answered_by"]),
        }
        problems += [f"{path} is {got!r}, was {want!r}" for path, (got, want) in facts.items() if got != want]

    # The user keeps each permission, on whichever model owns the table now (content types follow a moved model).
    user = User.objects.get(pk=record["user"])
    for table, codename in record["permissions"]:
        model = owner_of(table)
        if model is None:
            continue  # reported above
        name = f"{model._meta.app_label}.{codename}"
        if not user.has_perm(name):
            problems.append(f"the user lost permission {name} (table {table}): the grant still points at the "
                            f"permission of the old content type, or the permission is gone (a migration that moves "
                            f"a model to another app must move its django_content_type row too: app_label)")

    if problems:
        sys.exit("the upgrade lost or changed data:\n  " + "\n  ".join(problems))
    print(json.dumps({"tables": len(record["tables"]), "rows": sum(t["count"] for t in record["tables"].values()),
                      "permissions": len(record["permissions"])}))


if __name__ == "__main__":
    setup()
    if sys.argv[1:2] == ["seed"]:
        seed()
    elif sys.argv[1:2] == ["check"] and len(sys.argv) == 3:
        check(sys.argv[2])
    else:
        sys.exit("usage: migration_upgrade_seed.py seed | check RECORD.json")
