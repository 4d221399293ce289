"""Fail fast, with a clear message, when a configured service cannot be reached.

Embedded mode configures no external service, so it always passes. Called from a system check (every
``manage.py`` command that checks), from the ASGI entry point and from each Celery worker at start-up.
"""
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register
from django.db import connections


class ServiceUnavailable(RuntimeError):
    """A configured service (database, Redis, broker) did not answer."""


def _where(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")


def check_services(timeout=3):
    """{service: None when it answers, else (where, error)} for every configured service: the database, Redis
    (``REDIS_URL``) and a separate broker (``CELERY_BROKER_URL``). Used at start-up and by /readyz."""
    results = {}
    db = settings.DATABASES["default"]
    try:
        connections["default"].ensure_connection()
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        results["database"] = None
    except Exception as exc:  # any driver error means "not reachable"
        results["database"] = (f"database {db['ENGINE'].rsplit('.', 1)[-1]} at {db.get('HOST') or db['NAME']} "
                               f"(DATABASE_URL)", exc)
    if settings.REDIS_URL:
        import redis

        try:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
            client.ping()
            client.close()
            results["redis"] = None
        except Exception as exc:
            results["redis"] = (f"Redis at {_where(settings.REDIS_URL)} (REDIS_URL)", exc)
    broker = settings.CELERY_BROKER_URL
    if not settings.EMBEDDED and broker != settings.REDIS_URL:
        from kombu import Connection

        try:
            with Connection(broker, connect_timeout=timeout) as conn:
                conn.ensure_connection(max_retries=1)
            results["broker"] = None
        except Exception as exc:
            results["broker"] = (f"Celery broker at {_where(broker)} (CELERY_BROKER_URL)", exc)
    return results


def problems():
    """One human-readable line per configured service that cannot be reached."""
    return [f"{where} is unreachable: {exc}".strip() for where, exc in
            (r for r in check_services().values() if r is not None)]


def require_services():
    """Raise ServiceUnavailable naming every unreachable service."""
    found = problems()
    if found:
        raise ServiceUnavailable("Cannot start: " + "; ".join(found))


@register("services")
def services_check(app_configs=None, **kwargs):
    return [Error(line, id="coe.E001", hint="Start the service or fix the URL in the environment.")
            for line in problems()]
