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


def problems():
    """Return one human-readable line per configured service that cannot be reached."""
    found = []
    db = settings.DATABASES["default"]
    try:
        connections["default"].ensure_connection()
    except Exception as exc:  # any driver error means "cannot start"
        found.append(f"database {db['ENGINE'].rsplit('.', 1)[-1]} at {db.get('HOST') or db['NAME']} "
                     f"(DATABASE_URL) is unreachable: {exc}".strip())
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3).ping()
        except Exception as exc:
            found.append(f"Redis at {_where(settings.REDIS_URL)} (REDIS_URL) is unreachable: {exc}")
    broker = settings.CELERY_BROKER_URL
    if not settings.EMBEDDED and broker != settings.REDIS_URL:
        from kombu import Connection

        try:
            with Connection(broker, connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=1)
        except Exception as exc:
            found.append(f"Celery broker at {_where(broker)} (CELERY_BROKER_URL) is unreachable: {exc}")
    return found


def require_services():
    """Raise ServiceUnavailable naming every unreachable service."""
    found = problems()
    if found:
        raise ServiceUnavailable("Cannot start: " + "; ".join(found))


@register("services")
def services_check(app_configs=None, **kwargs):
    return [Error(line, id="coe.E001", hint="Start the service or fix the URL in the environment.")
            for line in problems()]
