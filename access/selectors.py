"""Reads of the access app for other apps (coe_site's websocket re-checks): they read tokens through here."""
from .models import ApiToken


def token_grants(token_ids):
    """(pk, scopes, expires_at) of the API tokens among ``token_ids`` that exist, in one query."""
    return ApiToken.objects.filter(pk__in=token_ids).values_list("pk", "scopes", "expires_at")
