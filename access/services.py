"""Token issue and lookup."""
import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from .models import ApiToken

LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(username):
    """Issue a new token for ``username`` and return it in clear (shown once, never stored)."""
    user = get_user_model().objects.get(username=username)
    token = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, key_hash=_digest(token), prefix=token[:8])
    return token


def user_for_token(token):
    """The active user owning ``token``, or None."""
    row = ApiToken.objects.select_related("user").filter(key_hash=_digest(token)).first()
    if row is None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:  # not a write per request
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user
