from django.apps import AppConfig

from coe_site import jobs


class HwsimConfig(AppConfig):
    name = "hwsim"
    verbose_name = "Hardware simulator"

    def ready(self):
        from . import services, tasks, twin  # noqa: F401  (tasks: registers the Celery tasks by name)

        jobs.register_reconciler(services.reconcile_simulations)
        jobs.register_reconciler(twin.reconcile_twin)
