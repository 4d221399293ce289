from django.apps import AppConfig

from coe_site import jobs


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self):
        from . import services, tasks, training  # noqa: F401  (tasks: registers the Celery tasks by name)

        jobs.register_reconciler(services.reconcile_batches)
        jobs.register_reconciler(training.reconcile_trainings)
        jobs.register_reconciler(services.reconcile_demo)
