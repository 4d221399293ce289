"""API tokens and the project-wide roles' permissions.

Only a SHA-256 of a token is stored, so a database leak does not leak credentials. A token acts for its user, narrowed
to its scopes, until it expires or its owner revokes it (deletes it).
"""
from django.conf import settings
from django.db import models

SCOPES = {
    "read": "read pages' data through the API: map, experts, dashboard, the user's own batches",
    "route": "route prompts (POST /api/route)",
    "chat": "chat with the experts (/v1)",
    "batches": "upload batches and read their results",
    "map:write": "edit the map, categories and experts' catalogue fields; retrain the router",
    "admin": "everything the user may do, expert backends and token management included",
}
DEFAULT_SCOPES = ["read", "route", "chat", "batches"]


class Rights(models.Model):
    """Holds the roles' permissions (no table). Roles are groups of these: see docs/SECURITY.md."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("operate", "Can route prompts, upload batches and chat with the experts"),
            ("view_all_traffic", "Can see every user's prompts, batches, results and answers"),
            ("edit_backends", "Can change expert backends: kind, URL, API key variable, model path, device, limits"),
        ]


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="First characters of the token, to tell tokens apart.")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for, e.g. 'ci-batch-upload'.")
    scopes = models.JSONField(default=list, help_text="What the token may do: " + ", ".join(SCOPES) + ".")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Blank: never expires.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.user} {self.prefix}…"

    def allows(self, scope):
        return "admin" in self.scopes or scope in self.scopes
