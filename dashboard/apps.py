from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """What operators watch: the live dashboard and the Prometheus metrics."""

    name = "dashboard"
    verbose_name = "Dashboard"
