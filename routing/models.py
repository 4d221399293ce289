"""Trained routers, routing decisions and batches (the categories they predict live in the catalog, ``experts``)."""
from django.conf import settings
from django.db import models


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


class Batch(models.Model):
    """One upload of prompts, routed in chunks by Celery workers."""

    STATUSES = [("queued", "Queued"), ("running", "Running"), ("done", "Done"), ("failed", "Failed")]

    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    name = models.CharField(max_length=200, blank=True, help_text="File name, or how the prompts arrived.")
    status = models.CharField(max_length=10, choices=STATUSES, default="queued", db_index=True)
    total = models.PositiveIntegerField()
    done = models.PositiveIntegerField(default=0)
    labelled = models.PositiveIntegerField(default=0, help_text="Prompts that came with a category label.")
    errors = models.JSONField(default=list, blank=True, help_text="[{line, message}] from routing.")
    answer = models.BooleanField(default=False, help_text="Also ask the chosen expert for an answer to each prompt.")

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "batches"

    def __str__(self):
        return f"batch #{self.pk} ({self.status} {self.done}/{self.total})"


class BatchChunk(models.Model):
    """A slice of a batch (its prompts inline) that one task claims, routes and marks done atomically."""

    STATUSES = [("pending", "Pending"), ("claimed", "Claimed"), ("done", "Done"), ("failed", "Failed")]

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    items = models.JSONField(help_text="[[line, prompt, external id, label], …]")
    status = models.CharField(max_length=10, choices=STATUSES, default="pending")
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=80, blank=True, help_text="Claim token: host, pid and a nonce.")
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When a worker was last woken for it.")
    last_error = models.CharField(max_length=300, blank=True, help_text="Why its last attempt did not finish.")

    class Meta:
        ordering = ["batch", "index"]
        constraints = [models.UniqueConstraint(fields=["batch", "index"], name="one_chunk_per_index")]
        indexes = [models.Index(fields=["batch", "status"])]

    def __str__(self):
        return f"chunk {self.index} of batch #{self.batch_id} ({self.status})"


class RoutingDecision(models.Model):
    SOURCES = [("api", "API"), ("page", "Page"), ("cli", "Command line"), ("batch", "Batch"), ("demo", "Demo")]

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    source = models.CharField(max_length=10, choices=SOURCES)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", help_text="Whose prompt it is: only they (and those who may see all "
                                                         "traffic) see its text.")
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
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.CASCADE, related_name="decisions")
    line = models.PositiveIntegerField(null=True, blank=True, help_text="Line of the prompt in its upload.")
    external_id = models.CharField(max_length=200, blank=True, help_text="The upload's own id for the prompt.")
    label = models.CharField(max_length=60, blank=True, help_text="The upload's category label, if any.")
    answered_by = models.ForeignKey("experts.Expert", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", help_text="The expert that answered, when one was asked.")
    answer_fallback_reason = models.CharField(max_length=40, blank=True,
                                              help_text="Why the chosen expert did not answer (timeout, …).")

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["batch", "line"], condition=models.Q(batch__isnull=False),
                                               name="one_decision_per_batch_line")]

    def __str__(self):
        return f"#{self.pk} {self.category} → {self.expert_id}"


class RouterTraining(models.Model):
    """A request to retrain the router and what became of it. The row, not a broker message, says what is pending:
    a lost message or a dead worker cannot lose it (the reconciler sends it again), and at most one is active."""

    STATUSES = [("queued", "Queued"), ("running", "Running"), ("done", "Done"), ("failed", "Failed")]

    task_id = models.CharField(max_length=36, unique=True, help_text="Public id: /api/router/retrain/<task_id>.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    override = models.BooleanField(default=False, help_text="Activate even if it validates worse.")
    status = models.CharField(max_length=10, choices=STATUSES, default="queued", db_index=True)
    active = models.BooleanField(default=True, help_text="Queued or running (at most one training is).")
    progress = models.JSONField(default=list, blank=True, help_text="Candidate classifiers as they finish.")
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=80, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["active"], condition=models.Q(active=True),
                                               name="one_training_at_a_time")]

    def __str__(self):
        return f"training {self.task_id} ({self.status})"


class DemoTraffic(models.Model):
    """Demo traffic, started and stopped from any web process: the row says whether it runs and how far it got, and
    a self-scheduling tick task (``routing.demo_tick``) routes what is due, so every web process sees the same state
    and a stop takes effect wherever it was asked for. ``generation`` tells a new start from an old one's ticks."""

    name = models.CharField(max_length=20, unique=True, default="default")
    running = models.BooleanField(default=False)
    rate = models.FloatField(default=0.0, help_text="Prompts per second.")
    batch_id = models.IntegerField(null=True, blank=True, help_text="Replay this batch's prompts (else the seeds).")
    generation = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    sent = models.PositiveIntegerField(default=0, help_text="Prompts routed since started_at.")
    ticked_at = models.DateTimeField(null=True, blank=True)
    ticks = models.PositiveIntegerField(default=0, help_text="Ticks run in this generation: a tick message carries the "
                                        "count it was sent for, so a duplicate chain (a reconciled tick racing a slow "
                                        "one) ends.")

    def __str__(self):
        return f"demo traffic ({'running' if self.running else 'stopped'})"
