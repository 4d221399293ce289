from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "serving"
    verbose_name = "Serving: answers from the experts (/v1, route and answer)"

    def ready(self):
        from . import tasks  # noqa: F401  (registers the Celery tasks by name)
