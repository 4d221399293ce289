"""Issue, look up and revoke API tokens.

Lookups are cached per process (``coe_site.invalidation``): every API call authenticates, and reading the token, its
user and the user's permissions cost one to three database round trips per call. A cached token is re-checked for
expiry and its user's active flag on every call; any token, user or role change drops the cache in the process that
makes it at once and in every other process when the bus delivers its announcement (milliseconds), and an entry is
never served after ``COE_AUTH_CACHE_S`` seconds (the bound for changes made behind Django's back, e.g. by SQL) nor
while the process's bus subscription is down.
"""
import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save
from django.utils import timezone

from coe_site import bus, invalidation

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
    is inactive. Notes when it was last used, at most once a minute (not a write per request). Each call gets its
    own instances (from the cache or the database); the user's permissions come with them."""
    digest = _digest(token)
    cached = _tokens.get(digest)
    if cached is None:
        stamp = _tokens.stamp()
        row = ApiToken.objects.select_related("user").filter(key_hash=digest).first()
        if row is None:
            return None  # unknown tokens are never cached
        cached = _snapshot(row)
        _tokens.put(digest, cached, stamp)
    row = _instances(cached)
    now = timezone.now()
    if not row.user.is_active or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        cached["token"]["last_used_at"] = now
    return row


_tokens = invalidation.Cache(invalidation.watch, bus.CONTROL, lambda: settings.COE_AUTH_CACHE_S)


def _snapshot(row):
    """What a cache entry holds: the token's and its user's column values, and the user's permissions (what
    ModelBackend would read for has_perm: two queries per call for a role's members otherwise)."""
    user = row.user
    perms = frozenset(user.get_all_permissions()) if user.is_active and not user.is_superuser else None
    return {"token": invalidation.row_values(row), "user": invalidation.row_values(user), "perms": perms}


def _instances(cached):
    """Fresh model instances (as loaded from the database) from a cache entry: nothing is shared between calls."""
    user = invalidation.instance(get_user_model(), cached["user"])
    if cached["perms"] is not None:
        user._perm_cache = set(cached["perms"])  # ModelBackend's per-instance cache of get_all_permissions()
    row = invalidation.instance(ApiToken, cached["token"])
    row.user = user
    return row


def _drop_cached_tokens(sender, **kwargs):
    """A token, user, group or permission changed in this process: no cached lookup may be served from now on (the
    bus tells the other processes when the change commits: coe_site.ws_access)."""
    invalidation.watch.bump(bus.CONTROL)


def _drop_on_role_change(sender, action, **kwargs):
    if action.startswith("post_") and sender in _ROLE_LINKS:
        invalidation.watch.bump(bus.CONTROL)


_ROLE_LINKS = (get_user_model().groups.through, get_user_model().user_permissions.through, Group.permissions.through)
for _model in (ApiToken, get_user_model(), Group, Permission):
    post_save.connect(_drop_cached_tokens, sender=_model, dispatch_uid=f"token-cache-save-{_model.__name__}")
    post_delete.connect(_drop_cached_tokens, sender=_model, dispatch_uid=f"token-cache-delete-{_model.__name__}")
m2m_changed.connect(_drop_on_role_change, dispatch_uid="token-cache-roles")
post_migrate.connect(_drop_cached_tokens, dispatch_uid="token-cache-flush")  # also sent when tables are flushed


def revoke_token(*, user, token_id):
    """Delete one of ``user``'s tokens (staff may revoke anyone's); True when a token was revoked."""
    tokens = ApiToken.objects.filter(pk=token_id)
    if not user.is_staff:
        tokens = tokens.filter(user=user)
    return tokens.delete()[0] > 0
