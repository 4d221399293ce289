"""Each user's API tokens: list, issue (the secret is shown once), revoke — a page and a JSON API."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .api import ApiError, api_view, json_body
from .models import DEFAULT_SCOPES, SCOPES, ApiToken
from .services import TokenError, issue_token, revoke_token

EXPIRY_CHOICES = [("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("365d", "1 year"), ("never", "never")]


def token_dict(row):
    return {"id": row.pk, "name": row.name, "prefix": row.prefix, "scopes": row.scopes,
            "created_at": row.created_at.isoformat(), "expires_at": row.expires_at and row.expires_at.isoformat(),
            "last_used_at": row.last_used_at and row.last_used_at.isoformat()}


@login_required
def tokens_page(request):
    issued = None
    if request.method == "POST":
        try:
            issued, _ = issue_token(user=request.user, scopes=request.POST.getlist("scopes"),
                                    expires=request.POST.get("expires") or None, name=request.POST.get("name", ""))
        except TokenError as exc:
            messages.error(request, f"No token issued: {exc}")
    return render(request, "access/tokens.html", {
        "tokens": ApiToken.objects.filter(user=request.user), "issued": issued, "scopes": SCOPES.items(),
        "default_scopes": DEFAULT_SCOPES, "expiry_choices": EXPIRY_CHOICES})


@login_required
@require_POST
def revoke_page(request, pk):
    if revoke_token(user=request.user, token_id=pk):
        messages.success(request, "Token revoked: it stops working at once, open live connections included.")
    else:
        messages.error(request, "No such token of yours.")
    return redirect("tokens")


@api_view(["GET", "POST"], scope="admin")
def tokens_api(request):
    """GET: the caller's tokens (never their secrets). POST {"name", "scopes", "expires"}: a new token, shown once."""
    if request.method == "GET":
        return {"tokens": [token_dict(t) for t in ApiToken.objects.filter(user=request.user)]}
    data = json_body(request)
    try:
        token, row = issue_token(user=request.user, scopes=data.get("scopes"), expires=data.get("expires"),
                                 name=data.get("name") or "")
    except TokenError as exc:
        raise ApiError(400, str(exc))
    return {**token_dict(row), "token": token}


@api_view(["DELETE"], scope="admin")
def token_api(request, pk):
    if not revoke_token(user=request.user, token_id=pk):
        raise ApiError(404, f"No token #{pk} of yours.")
    return {"revoked": pk}
