"""ExpertCall's content type follows it from experts to serving, so permissions granted on calls keep applying."""
from django.db import migrations


def move(apps, schema_editor, old="experts", new="serving"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=new, model="expertcall").exists():
        ContentType.objects.filter(app_label=old, model="expertcall").update(app_label=new)


def move_back(apps, schema_editor):
    move(apps, schema_editor, old="serving", new="experts")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("serving", "0001_initial"),
    ]

    operations = [migrations.RunPython(move, move_back)]
