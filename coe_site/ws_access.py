"""Who a websocket is, what it may see, and when it must close.

- ``Viewer``: the user behind a socket and the credential it connected with (an API token or a session).
- ``summary_lens``: ``dashboard.summary`` as each viewer may see it — others' prompt text and batch names blanked
  exactly as ``GET /api/dashboard`` blanks them (access.roles.redact). Per message: one full and one redacted variant,
  plus one per viewer that owns items in it.
- ``Guard``: a socket closes (4401) when its token is deleted, expires or loses the read scope, its session ends, or
  its user is deactivated or deleted. Signal handlers here announce those events on the bus (every process closes its
  sockets at once); each process also re-checks all its sockets every ``COE_WS_RECHECK_S`` seconds with a fixed
  number of queries (tokens, sessions, users, view-all holders), whatever the number of sockets.
"""
import hashlib
import json
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model, user_logged_out
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from access.roles import redact
from access.selectors import token_grants

from . import bus

User = get_user_model()
_sessions = import_module(settings.SESSION_ENGINE).SessionStore
_SessionModel = _sessions.get_model_class() if hasattr(_sessions, "get_model_class") else None


def session_digest(session_key):
    """Sessions are named on the bus by a digest, never by their key."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


@dataclass(eq=False)
class Viewer:
    user_id: int
    username: str
    view_all: bool
    token_id: int = None
    session_key: str = None  # kept in this process only
    session_hash: str = None
    expires_at: float = None  # the token's expiry (epoch seconds)

    def __str__(self):
        return f"{self.username} ({'token #%s' % self.token_id if self.token_id else 'session'})"


def viewer_for(scope, view_all=None):
    """The Viewer of a websocket scope (after the auth middlewares), or None if it may not connect. ``view_all``: the
    user's view-all right when another open socket of theirs already knows it (no query then)."""
    user = scope.get("user")
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    token_id = scope.get("auth_token")
    session_key = None if token_id else getattr(scope.get("session"), "session_key", None)
    if token_id is None and not session_key:
        return None
    if view_all is None:
        view_all = bool(user.is_staff or user.is_superuser or _view_all_holders({user.pk: user}))
    return Viewer(user_id=user.pk, username=user.get_username(), view_all=view_all, token_id=token_id,
                  session_key=session_key, session_hash=session_digest(session_key) if session_key else None,
                  expires_at=scope.get("auth_token_expires"))


# --- what a viewer may see ------------------------------------------------------------------------------------------

def summary_lens(data):
    """(key_of(viewer), render(key)) for a ``dashboard.summary``: "all" (the message as sent), "others" (private
    text blanked), or a user id (that user's own items readable)."""
    decisions = data.get("decisions") or []
    batches = data.get("batches") or {}
    owners = {d.get("user") for d in decisions if d.get("source") != "demo"} | {b.get("user") for b in batches.values()}
    if not owners:
        return (lambda viewer: "all"), (lambda key: data)

    def key_of(viewer):
        if viewer.view_all:
            return "all"
        return viewer.user_id if viewer.user_id in owners else "others"

    def render(key):
        if key == "all":
            return data
        who = _reader(None if key == "others" else key)
        names = redact(list(batches.values()), who, fields=("name",), everything=False)
        return {**data, "decisions": redact(decisions, who, everything=False), "batches": dict(zip(batches, names))}

    return key_of, render


def _reader(pk):
    """Someone who may read public items and those owned by ``pk``, nothing more (key_of decided the rest)."""
    return SimpleNamespace(pk=pk, is_authenticated=False, is_active=False, is_staff=False)


LENSES = {"dashboard.summary": summary_lens}


# --- when a socket must close ---------------------------------------------------------------------------------------

class Guard:
    def expires_at(self, viewer):
        return viewer.expires_at

    def affected(self, message, sockets):
        """(sockets to close now, sockets to re-check) for a control message from the bus."""
        kind, ident = message.get("kind"), message.get("id")
        if kind == "token.deleted":
            return [s for s in sockets if s.viewer.token_id == ident], []
        if kind == "session.ended":
            return [s for s in sockets if s.viewer.session_hash == message.get("hash")], []
        if kind == "token.changed":
            return [], [s for s in sockets if s.viewer.token_id == ident]
        if kind == "user.changed":
            return [], [s for s in sockets if s.viewer.user_id == ident]
        if kind == "roles.changed":
            return [], list(sockets)
        return [], []

    async def recheck(self, sockets):
        """The sockets whose credential is no longer valid; refreshes each viewer's view-all right."""
        verdicts = await database_sync_to_async(check_viewers)([s.viewer for s in sockets])
        closed = []
        for sock in sockets:
            verdict = verdicts[sock.viewer]
            if verdict is None:
                closed.append(sock)
            else:
                sock.viewer.view_all = verdict
        return closed


def check_viewers(viewers):
    """{viewer: None (must close) or its current view-all right}, in at most four queries."""
    now = timezone.now()
    token_ids = {v.token_id for v in viewers if v.token_id}
    tokens = set()
    if token_ids:
        for pk, scopes, expires in token_grants(token_ids):
            if (expires is None or expires > now) and ("read" in scopes or "admin" in scopes):
                tokens.add(pk)
    sessions = _session_data({v.session_key for v in viewers if v.session_key}, now)
    user_ids = {v.user_id for v in viewers}
    users = {u.pk: u for u in User.objects.filter(pk__in=user_ids, is_active=True)}
    holders = _view_all_holders(users)
    out = {}
    for v in viewers:
        user = users.get(v.user_id)
        if user is None or (v.token_id and v.token_id not in tokens) or \
                (v.session_key and not _session_is_users(sessions.get(v.session_key), user)):
            out[v] = None
        else:
            out[v] = bool(user.is_staff or user.is_superuser or user.pk in holders)
    return out


def _view_all_holders(users):
    """Which of ``users`` (active) hold access.view_all_traffic, their own or through a group, in one query: with
    is_staff/is_superuser this mirrors access.roles.can_view_all (tests/test_realtime_isolation.py checks both)."""
    if not users:
        return set()
    perm = dict(codename="view_all_traffic", content_type__app_label="access")
    direct = {f"user_permissions__{k}": v for k, v in perm.items()}
    grouped = {f"groups__permissions__{k}": v for k, v in perm.items()}
    return set(User.objects.filter(pk__in=list(users)).filter(Q(**direct) | Q(**grouped))
               .values_list("pk", flat=True).distinct())


def _session_data(keys, now):
    if not keys:
        return {}
    if _SessionModel is not None:
        rows = _SessionModel.objects.filter(session_key__in=keys, expire_date__gt=now)
        return {row.session_key: row.get_decoded() for row in rows}
    return {key: data for key in keys if (data := _sessions(session_key=key).load())}


def _session_is_users(data, user):
    """Does this session still log ``user`` in (the same check as django.contrib.auth.get_user)?"""
    if not data or str(data.get(SESSION_KEY)) != str(user.pk):
        return False
    digest = data.get(HASH_SESSION_KEY) or ""
    return bool(digest) and (constant_time_compare(digest, user.get_session_auth_hash()) or
                             any(constant_time_compare(digest, h) for h in user.get_session_auth_fallback_hash()))


# --- announcing revocations to every process ------------------------------------------------------------------------

def announce(kind, **fields):
    """Publish a control event once the current transaction commits."""
    text = json.dumps({"kind": kind, **fields})
    transaction.on_commit(lambda: bus.publish(bus.CONTROL, text))


@receiver(post_delete, sender="access.ApiToken", dispatch_uid="ws-token-deleted")
def _token_deleted(sender, instance, **kwargs):
    announce("token.deleted", id=instance.pk)


@receiver(post_save, sender="access.ApiToken", dispatch_uid="ws-token-changed")
def _token_changed(sender, instance, created, update_fields=None, **kwargs):
    if not created and set(update_fields or ()) != {"last_used_at"}:
        announce("token.changed", id=instance.pk)


@receiver(post_save, sender=User, dispatch_uid="ws-user-changed")
def _user_changed(sender, instance, created, update_fields=None, **kwargs):
    if not created and set(update_fields or ()) != {"last_login"}:
        announce("user.changed", id=instance.pk)


@receiver(post_delete, sender=User, dispatch_uid="ws-user-deleted")
def _user_deleted(sender, instance, **kwargs):
    announce("user.changed", id=instance.pk)


@receiver(m2m_changed, dispatch_uid="ws-roles-changed")
def _roles_changed(sender, action, **kwargs):
    """Groups or permissions changed: the view-all right of some viewers may have changed."""
    from django.contrib.auth.models import Group

    if action in ("post_add", "post_remove", "post_clear") and sender in (
            User.groups.through, User.user_permissions.through, Group.permissions.through):
        announce("roles.changed")


@receiver(user_logged_out, dispatch_uid="ws-logged-out")
def _logged_out(sender, request, user, **kwargs):
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        announce("session.ended", hash=session_digest(key))


if _SessionModel is not None:
    @receiver(post_delete, sender=_SessionModel, dispatch_uid="ws-session-deleted")
    def _session_deleted(sender, instance, **kwargs):
        announce("session.ended", hash=session_digest(instance.session_key))
