"""Websocket URL patterns (kept out of ``routing/`` because that name is our Django app)."""

websocket_urlpatterns = []
