"""ExpertCall now belongs to the serving app: drop it from this app's state only; the table experts_expertcall and
its rows stay (serving 0001 takes the model over, serving 0002 its content type)."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("experts", "0007_category_content_type"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="ExpertCall")],
                                            database_operations=[]),
    ]
