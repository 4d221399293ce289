"""Load the default taxonomy and its seed prompts, so a freshly migrated database can train a router."""
from django.db import migrations


def load(apps, schema_editor):
    from routing.defaults import seed_prompts, taxonomy

    Category = apps.get_model("routing", "Category")
    for name, description in taxonomy().items():
        Category.objects.get_or_create(name=name, defaults={"description": description,
                                                            "seed_prompts": seed_prompts(name)})


class Migration(migrations.Migration):
    dependencies = [("routing", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
