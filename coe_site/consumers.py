"""The one websocket endpoint: authenticate, join the requested groups, forward events. No logic here."""
import asyncio

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .realtime import GROUPS, bind_server_loop


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        bind_server_loop(asyncio.get_running_loop())
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        query = dict(part.split("=", 1) for part in self.scope.get("query_string", b"").decode().split("&")
                     if "=" in part)
        wanted = [g for g in query.get("groups", "dashboard").split(",") if g]
        unknown = [g for g in wanted if g not in GROUPS]
        if unknown:
            await self.close(code=4400)
            return
        self.groups_joined = wanted
        for group in wanted:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"event": "hello", "data": {"user": user.get_username(), "groups": wanted}})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def event_message(self, message):
        await self.send_json({"event": message["event"], "data": message["data"]})
