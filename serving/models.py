"""What serving records: every answer (or failed attempt to answer) by the experts."""
from django.conf import settings
from django.db import models

from experts.models import Expert


class ExpertCall(models.Model):
    """One answer (or failed attempt to answer) by the experts: who was asked, who answered, how fast, why not."""

    STATUSES = [("ok", "Answered by the chosen expert"), ("fallback", "Answered by the fallback expert"),
                ("error", "Not answered"), ("aborted", "Client went away mid-answer")]
    SOURCES = [("api", "API"), ("page", "Page"), ("batch", "Batch")]

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    source = models.CharField(max_length=10, choices=SOURCES, default="api")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decision = models.ForeignKey("routing.RoutingDecision", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="calls")
    requested_model = models.CharField(max_length=100, help_text="'coe' or an expert's name.")
    primary = models.ForeignKey(Expert, null=True, on_delete=models.PROTECT, related_name="+",
                                help_text="The expert the router and map (or the caller) chose.")
    expert = models.ForeignKey(Expert, null=True, blank=True, on_delete=models.PROTECT, related_name="calls",
                               help_text="The expert that answered.")
    status = models.CharField(max_length=10, choices=STATUSES, db_index=True)
    fallback_reason = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    attempts = models.JSONField(default=list, blank=True)
    stream = models.BooleanField(default=False)
    simulated = models.BooleanField(default=False)
    ttft_ms = models.FloatField(null=True, blank=True)
    total_ms = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    response = models.TextField(blank=True)

    class Meta:
        db_table = "experts_expertcall"  # moved here from experts without touching the table (state-only migration)
        ordering = ["-id"]

    def __str__(self):
        return f"call #{self.pk} {self.requested_model} → {self.expert_id} ({self.status})"
