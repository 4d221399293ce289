"""Issue, look up and revoke API tokens."""
import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.utils import timezone

from .models import DEFAULT_SCOPES, SCOPES, ApiToken

LAST_USED_RESOLUTION = timedelta(minutes=1)
DEFAULT_LIFETIME = timedelta(days=90)


class TokenError(ValueError):
    """A token request that cannot be honoured (unknown scope, bad expiry); the message says why."""


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(values):
    """['route', 'chat,batches'] → ['batches', 'chat', 'route']; None or [] → the default scopes."""
    scopes = sorted({s.strip() for v in (values or []) for s in str(v).split(",") if s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise TokenError(f"unknown scope{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
                         f"scopes: {', '.join(SCOPES)}.")
    return scopes or sorted(DEFAULT_SCOPES)


def parse_expiry(value, now=None):
    """'90d', '12h', 'never', an ISO date/time, or None (→ 90 days) → an aware datetime or None (never)."""
    now = now or timezone.now()
    if value is None or value == "":
        return now + DEFAULT_LIFETIME
    text = str(value).strip().lower()
    if text == "never":
        return None
    match = re.fullmatch(r"(\d{1,5})([dh])", text)
    if match:
        amount, unit = int(match[1]), match[2]
        if amount == 0:
            raise TokenError("a token must live at least one hour.")
        return now + (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        when = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise TokenError(f"expiry {value!r} is not '<days>d', '<hours>h', 'never' or an ISO date.") from None
    if timezone.is_naive(when):
        when = timezone.make_aware(when, dt_timezone.utc)
    if when <= now:
        raise TokenError("the expiry date is in the past.")
    return when


def issue_token(*, user, scopes=None, expires=None, name=""):
    """Issue a new token for ``user`` (a User or a username); returns (token in clear — shown once, never stored —,
    its row). ``scopes``: names or comma lists (default read, route, chat, batches); ``expires``: see parse_expiry."""
    if isinstance(user, str):
        user = get_user_model().objects.get(username=user)
    token = secrets.token_urlsafe(32)
    row = ApiToken.objects.create(user=user, key_hash=_digest(token), prefix=token[:8], name=str(name)[:100],
                                  scopes=parse_scopes(scopes), expires_at=parse_expiry(expires))
    return token, row


def token_row(token):
    """The live ApiToken (its user selected) for a token in clear, or None when unknown, expired, revoked or its user
    is inactive. Notes when it was last used, at most once a minute (not a write per request)."""
    row = ApiToken.objects.select_related("user").filter(key_hash=_digest(token)).first()
    now = timezone.now()
    if row is None or not row.user.is_active or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row


def revoke_token(*, user, token_id):
    """Delete one of ``user``'s tokens (staff may revoke anyone's); True when a token was revoked."""
    tokens = ApiToken.objects.filter(pk=token_id)
    if not user.is_staff:
        tokens = tokens.filter(user=user)
    return tokens.delete()[0] > 0
