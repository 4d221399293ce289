"""The CoE dashboard project: settings, ASGI entry point, Celery app and URL maps."""
from .celery import app as celery_app

__all__ = ("celery_app",)
