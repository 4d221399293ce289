"""Websocket auth for scripts: ``Authorization: Bearer <token>`` (with the ``read`` scope) on the handshake; browsers
use the session. ``scope["auth_token"]`` names the token and ``scope["auth_token_expires"]`` its expiry (epoch seconds or
None), so its socket can be closed when it is revoked or expires (coe_site.ws_access)."""
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
            # not thread-sensitive: lookups of a reconnect storm wait on the database in parallel (default pool)
            row = await database_sync_to_async(token_row, thread_sensitive=False)(token.strip())
            if row is not None and row.allows("read"):
                expires = row.expires_at.timestamp() if row.expires_at else None
                scope = {**scope, "user": row.user, "auth_token": row.pk, "auth_token_expires": expires}
        return await self.app(scope, receive, send)
