"""Category's content type follows it to the catalog app, so permissions granted on categories (and admin log entries)
keep pointing at it. Without this, Django would create a new ``experts.category`` content type with new permissions
and every grant on ``routing.category`` would silently stop applying."""
from django.db import migrations


def move(apps, schema_editor, old="routing", new="experts"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=new, model="category").exists():
        ContentType.objects.filter(app_label=old, model="category").update(app_label=new)


def move_back(apps, schema_editor):
    move(apps, schema_editor, old="experts", new="routing")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("experts", "0006_category_from_routing"),
        ("routing", "0007_category_to_experts"),
    ]

    operations = [migrations.RunPython(move, move_back)]
