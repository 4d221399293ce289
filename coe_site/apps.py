from django.apps import AppConfig


class CoeSiteConfig(AppConfig):
    """The project itself as an app, so its start-up service check is registered for every command."""

    name = "coe_site"
    verbose_name = "CoE dashboard"

    def ready(self):
        from . import preflight  # noqa: F401  (registers the "services" system check)
        from . import ws_access  # noqa: F401  (announces token, session and user revocations to open websockets)
