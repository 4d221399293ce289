"""The one websocket endpoint, ``/ws/events/?groups=dashboard,map``: authenticate, attach to this process's hub,
wait for the client to leave. A plain ASGI application: sockets use no channel layer (see coe_site.fanout).

Close codes: 4400 unknown group, 4401 not signed in or credential revoked, 4408 fell too far behind (reconnect and
catch up). The first message is ``hello`` with ``live`` (false while the bus is unreachable: a ``resync`` follows
when it is back).
"""
import json

from channels.db import database_sync_to_async
from django.conf import settings

from . import bus, fanout, ws_access
from .realtime import GROUPS


def current_hub():
    return fanout.hub_for_running_loop(lambda: fanout.Hub(
        bus.get_bus(), GROUPS, lenses=ws_access.LENSES, guard=ws_access.Guard(),
        queue_limit=settings.COE_WS_QUEUE, max_buffer=settings.COE_WS_MAX_BUFFER,
        recheck_s=settings.COE_WS_RECHECK_S))


class EventsConsumer:
    @classmethod
    def as_asgi(cls):
        return cls()

    async def __call__(self, scope, receive, send):
        if (await receive())["type"] != "websocket.connect":
            return
        hub = current_hub()
        user_id = getattr(scope.get("user"), "pk", None)
        known = next((s.viewer.view_all for s in hub.sockets if s.viewer.user_id == user_id), None)
        viewer = await database_sync_to_async(ws_access.viewer_for, thread_sensitive=False)(scope, known)
        if viewer is None:
            await send({"type": "websocket.close", "code": fanout.CLOSE_REVOKED})
            return
        query = dict(part.split("=", 1) for part in scope.get("query_string", b"").decode().split("&") if "=" in part)
        wanted = [g for g in query.get("groups", "dashboard").split(",") if g]
        if not wanted or any(g not in GROUPS for g in wanted):
            await send({"type": "websocket.close", "code": 4400})
            return
        await send({"type": "websocket.accept"})
        live = await hub.ready(settings.COE_WS_SUBSCRIBE_TIMEOUT_S)
        sock = fanout.Socket(scope.get("server_send", send), wanted, viewer)
        # hello first, then attach: every event after the hello reaches the page, which catches up on hello
        await sock.send_text(json.dumps({"event": "hello", "data": {"user": viewer.username, "groups": wanted,
                                                                    "live": live}}))
        hub.attach(sock)
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass  # clients have nothing to say
        finally:
            hub.detach(sock)
