"""What each role may do (docs/SECURITY.md). Staff count as operators and see all traffic; expert backends need the
explicit permission (or superuser): pointing the product at a URL with a key variable is an administrator's power."""


def _active(user):
    return bool(user is not None and user.is_authenticated and user.is_active)


def can_operate(user):
    """Route prompts, upload batches, chat with the experts."""
    return _active(user) and (user.is_staff or user.has_perm("access.operate"))


def can_view_all(user):
    """See other users' prompts, batches, results and answers."""
    return _active(user) and (user.is_staff or user.has_perm("access.view_all_traffic"))


def can_edit_backends(user):
    return _active(user) and (user.is_superuser or user.has_perm("access.edit_backends"))


def owned_by(queryset, user, field="created_by"):
    """``queryset`` narrowed to ``user``'s own rows unless the user may see everyone's."""
    return queryset if can_view_all(user) else queryset.filter(**{field: user})


def may_read(user, owner_id, source=None):
    """May ``user`` read the text of a prompt (or batch name) owned by ``owner_id``? Demo traffic replays the shipped
    seed prompts: anyone signed in may read it."""
    return source == "demo" or (owner_id is not None and owner_id == getattr(user, "pk", None)) or can_view_all(user)


def redact(items, user, fields=("prompt",), everything=None):
    """Feed items (dicts with ``user`` and ``source``) as ``user`` may see them: others' text fields blanked and
    marked ``"redacted": true``. ``everything``: can_view_all(user), when the caller already knows it."""
    if everything is None:
        everything = can_view_all(user)
    if everything:
        return list(items)
    return [item if may_read(user, item.get("user"), item.get("source"))
            else {**item, **{f: "" for f in fields if f in item}, "redacted": True} for item in items]
