"""Category now belongs to the catalog app (experts): drop it from routing's state only; the table stays."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("routing", "0006_durable_work"),
        ("experts", "0006_category_from_routing"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="Category")],
                                            database_operations=[]),
    ]
