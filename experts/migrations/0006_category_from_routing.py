"""Category moves from routing to the catalog app: state only, the table ``routing_category`` and its rows stay."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("experts", "0005_traffic_splits"),
        ("routing", "0006_durable_work"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Category",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.SlugField(max_length=60, unique=True)),
                        ("description", models.TextField(blank=True)),
                        ("seed_prompts", models.JSONField(blank=True, default=list,
                                                          help_text="Labelled examples the router trains on.")),
                        ("retired", models.BooleanField(default=False)),
                    ],
                    options={"db_table": "routing_category", "ordering": ["name"], "verbose_name_plural": "categories"},
                ),
                migrations.AlterField(
                    model_name="mapassignment",
                    name="category",
                    field=models.ForeignKey(on_delete=models.deletion.PROTECT, related_name="+", to="experts.category"),
                ),
            ],
            database_operations=[],
        ),
    ]
