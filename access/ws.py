"""Websocket auth for scripts: ``Authorization: Bearer <token>`` on the handshake (browsers use the session)."""
from channels.db import database_sync_to_async

from .services import user_for_token


class BearerTokenMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            user = await database_sync_to_async(user_for_token)(token.strip())
            if user is not None:
                scope = {**scope, "user": user}
        return await self.app(scope, receive, send)
