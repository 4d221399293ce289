"""Websocket auth for scripts: ``Authorization: Bearer <token>`` (with the ``read`` scope) on the handshake; browsers
use the session. ``scope["auth_token"]`` names the token, so its socket can be closed when it is revoked."""
from channels.db import database_sync_to_async

from .services import token_row


class BearerTokenMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            row = await database_sync_to_async(token_row)(token.strip())
            if row is not None and row.allows("read"):
                scope = {**scope, "user": row.user, "auth_token": row.pk}
        return await self.app(scope, receive, send)
