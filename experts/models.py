"""Experts, immutable map versions (category → expert) and the audit log."""
from django.conf import settings
from django.db import models


class Expert(models.Model):
    name = models.SlugField(max_length=80, unique=True, help_text="Short name used in maps and the API.")
    model_id = models.CharField(max_length=200, help_text="Upstream model identifier, e.g. Qwen/Qwen2-7B-Instruct.")
    parameters = models.BigIntegerField(help_text="Total parameter count.")
    active_parameters = models.BigIntegerField(null=True, blank=True,
                                               help_text="Parameters active per token (mixture-of-experts); "
                                                         "blank = all.")
    bytes_per_parameter = models.FloatField(default=2.0, help_text="2 for BF16/FP16, 1 for INT8/FP8.")
    context_length = models.PositiveIntegerField(default=8192)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["parameters", "name"]

    def __str__(self):
        return self.name

    @property
    def effective_active_parameters(self):
        return self.active_parameters or self.parameters

    @property
    def weight_bytes(self):
        return int(self.parameters * self.bytes_per_parameter)


class MapVersion(models.Model):
    """One immutable snapshot of the whole map. The current map is the highest ``number``."""

    number = models.PositiveIntegerField(unique=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rolled_back_from = models.PositiveIntegerField(null=True, blank=True,
                                                   help_text="Version whose assignments this one restores.")

    class Meta:
        ordering = ["-number"]
        permissions = [("edit_map", "Can edit the category→expert map, categories and experts")]

    def __str__(self):
        return f"v{self.number}"


class MapAssignment(models.Model):
    version = models.ForeignKey(MapVersion, on_delete=models.CASCADE, related_name="assignments")
    category = models.ForeignKey("routing.Category", on_delete=models.PROTECT, related_name="+")
    expert = models.ForeignKey(Expert, on_delete=models.PROTECT, related_name="assignments")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "category"], name="one_expert_per_category")]


class AuditEntry(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=40)
    object_name = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_type} {self.object_name}"
