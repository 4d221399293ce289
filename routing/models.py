"""Categories, trained routers and routing decisions."""
from django.conf import settings
from django.db import models


class Category(models.Model):
    name = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    seed_prompts = models.JSONField(default=list, blank=True, help_text="Labelled examples the router trains on.")
    retired = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


class RouterModel(models.Model):
    """A trained router artifact (inert arrays + JSON; see routing.engine.router). At most one is active."""

    version = models.PositiveIntegerField(unique=True)
    is_active = models.BooleanField(default=False)
    embedder_id = models.CharField(max_length=200)
    classifier = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    thresholds = models.JSONField(default=dict)
    categories = models.JSONField(default=list)
    training_data_hash = models.CharField(max_length=64)
    training_size = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict)
    artifact = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True),
                                               name="one_active_router")]

    def __str__(self):
        return f"router v{self.version} ({self.classifier})"


class RoutingDecision(models.Model):
    SOURCES = [("api", "API"), ("page", "Page"), ("cli", "Command line")]

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    source = models.CharField(max_length=10, choices=SOURCES)
    prompt = models.TextField()
    category = models.CharField(max_length=60, db_index=True, help_text="Category used (after any fallback).")
    predicted_category = models.CharField(max_length=60)
    confidence = models.FloatField()
    probabilities = models.JSONField(help_text="Top-k [category, probability] pairs, best first.")
    entropy = models.FloatField(help_text="Normalised entropy of the category distribution (0 certain, 1 uniform).")
    margin = models.FloatField()
    fallback = models.BooleanField(default=False)
    fallback_reason = models.CharField(max_length=40, blank=True)
    expert = models.ForeignKey("experts.Expert", null=True, on_delete=models.PROTECT, related_name="decisions")
    map_version = models.ForeignKey("experts.MapVersion", null=True, on_delete=models.PROTECT, related_name="+")
    router = models.ForeignKey(RouterModel, on_delete=models.PROTECT, related_name="decisions")
    latency_ms = models.FloatField()

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"#{self.pk} {self.category} → {self.expert_id}"
