"""The paper's expert pool with real parameter counts, and map version 1."""
import json
from pathlib import Path

from django.db import migrations

DEFAULTS = Path(__file__).resolve().parent.parent / "data" / "default_experts.json"


def load(apps, schema_editor):
    Expert = apps.get_model("experts", "Expert")
    MapVersion = apps.get_model("experts", "MapVersion")
    MapAssignment = apps.get_model("experts", "MapAssignment")
    Category = apps.get_model("routing", "Category")
    data = json.loads(DEFAULTS.read_text())
    for spec in data["experts"]:
        Expert.objects.get_or_create(name=spec["name"], defaults=spec)
    if not MapVersion.objects.exists():
        version = MapVersion.objects.create(number=1, note="Default map")
        for category, expert in data["map"].items():
            MapAssignment.objects.create(version=version, category=Category.objects.get(name=category),
                                         expert=Expert.objects.get(name=expert))


class Migration(migrations.Migration):
    dependencies = [("experts", "0002_initial"), ("routing", "0002_default_taxonomy")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
