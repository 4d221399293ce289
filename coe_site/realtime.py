"""Publish JSON-safe events to websocket groups, after the surrounding transaction commits.

Groups: ``dashboard`` (routing decisions, stats, batch progress), ``map`` (map versions, retraining),
``hwsim`` (simulation progress and occupancy). A browser or script joins them through ``/ws/events/``.
"""
import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

GROUPS = ("dashboard", "map", "hwsim")
log = logging.getLogger(__name__)


def json_safe(payload):
    """Round-trip through JSON so dates, decimals and numpy scalars become plain JSON values."""
    return json.loads(json.dumps(payload, cls=_Encoder))


class _Encoder(DjangoJSONEncoder):
    def default(self, o):
        if hasattr(o, "item"):  # numpy scalar
            return o.item()
        if hasattr(o, "tolist"):
            return o.tolist()
        return super().default(o)


def send_now(group, event, data):
    """Send immediately (callers already outside a transaction, e.g. a coalescer flushing)."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}")
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(group, {"type": "event.message", "event": event, "data": json_safe(data)})
    except Exception:  # a dropped live update must never fail the write that caused it
        log.exception("realtime publish to %s failed", group)


def publish(group, event, data):
    """Send ``{"event": event, "data": data}`` to ``group`` once the current transaction commits."""
    safe = json_safe(data)
    transaction.on_commit(lambda: send_now(group, event, safe))
