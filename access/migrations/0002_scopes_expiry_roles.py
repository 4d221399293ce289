"""Token scopes, expiry and names; the roles' permissions and groups.

Tokens that exist before this migration keep working as they did (every scope, no expiry: their owners rotate them,
see docs/SECURITY.md); new tokens get the default scopes and an expiry. Users that exist before it keep what they
could do: they join the Operators group (route, upload, chat). Users created later start as viewers.
"""
from django.db import migrations, models

ROLES = {
    "Viewers": [],
    "Operators": ["access.operate"],
    "Map editors": ["access.operate", "experts.edit_map"],
    "Backend admins": ["access.operate", "experts.edit_map", "access.edit_backends"],
    "Auditors": ["access.view_all_traffic"],
}


def role_groups(apps):
    """Create the role groups with their permissions (also used by tests after a flush empties the tables)."""
    from django.contrib.auth.management import create_permissions

    for config in apps.get_app_configs():  # permissions are created after migrations; groups need them now
        before = getattr(config, "models_module", None)
        config.models_module = before or True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = before
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def roles(apps, schema_editor):
    role_groups(apps)
    Group = apps.get_model("auth", "Group")
    operators = Group.objects.get(name="Operators")
    for user in apps.get_model("auth", "User").objects.filter(is_superuser=False):
        user.groups.add(operators)
    apps.get_model("access", "ApiToken").objects.update(scopes=["admin"])


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("experts", "0005_traffic_splits"),
    ]

    operations = [
        migrations.CreateModel(
            name="Rights",
            fields=[("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"))],
            options={"managed": False, "default_permissions": (), "permissions": [
                ("operate", "Can route prompts, upload batches and chat with the experts"),
                ("view_all_traffic", "Can see every user's prompts, batches, results and answers"),
                ("edit_backends", "Can change expert backends: kind, URL, API key variable, model path, device, "
                                  "limits")]},
        ),
        migrations.AlterModelOptions(name="apitoken", options={"ordering": ["-created_at"]}),
        migrations.AddField(model_name="apitoken", name="name", field=models.CharField(
            blank=True, help_text="What the token is for, e.g. 'ci-batch-upload'.", max_length=100)),
        migrations.AddField(model_name="apitoken", name="scopes", field=models.JSONField(
            default=list, help_text="What the token may do: read, route, chat, batches, map:write, admin.")),
        migrations.AddField(model_name="apitoken", name="expires_at", field=models.DateTimeField(
            blank=True, help_text="Blank: never expires.", null=True)),
        migrations.RunPython(roles, migrations.RunPython.noop),
    ]
