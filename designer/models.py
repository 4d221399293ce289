"""Quality tables: measured expert quality, per prompt or per category, with each model's size.

Why per table: score scales differ by source (a 1-10 judge, WildBench's -10..10), so a table's scores are only
ever compared with each other, never merged across tables.
"""
from django.conf import settings
from django.db import models


class QualityTable(models.Model):
    PER_PROMPT, PER_CATEGORY = "prompt", "category"
    KINDS = [(PER_PROMPT, "Per-prompt scores"), (PER_CATEGORY, "Per-category scores")]

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=KINDS)
    scale = models.CharField(max_length=120, blank=True, help_text="The scores' scale, e.g. 'GPT-4 judge, 1-10'.")
    source_name = models.CharField(max_length=255, help_text="File the scores came from.")
    router_version = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Router that categorised the prompts (per-prompt tables).")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name


class TableModel(models.Model):
    """A model scored by a table, its size (billions of parameters) and the expert that serves it, if any."""

    table = models.ForeignKey(QualityTable, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=200)
    total_params = models.FloatField(help_text="Billions of parameters.")
    active_params = models.FloatField(help_text="Billions active per token (= total unless mixture-of-experts).")
    expert = models.ForeignKey("experts.Expert", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+", help_text="Set by the operator; needed to apply a map.")

    class Meta:
        ordering = ["total_params", "name"]
        constraints = [models.UniqueConstraint(fields=["table", "name"], name="one_row_per_table_model")]

    def __str__(self):
        return self.name


class TablePrompt(models.Model):
    """A prompt of a per-prompt table, with the category the table's router gave it."""

    table = models.ForeignKey(QualityTable, on_delete=models.CASCADE, related_name="prompts")
    prompt_id = models.CharField(max_length=200)
    text = models.TextField()
    category = models.CharField(max_length=60)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["table", "prompt_id"], name="one_row_per_table_prompt")]


class PromptScore(models.Model):
    prompt = models.ForeignKey(TablePrompt, on_delete=models.CASCADE, related_name="scores")
    model = models.ForeignKey(TableModel, on_delete=models.CASCADE, related_name="prompt_scores")
    score = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prompt", "model"], name="one_score_per_prompt_model")]


class CategoryScore(models.Model):
    table = models.ForeignKey(QualityTable, on_delete=models.CASCADE, related_name="category_scores")
    category = models.CharField(max_length=120)
    model = models.ForeignKey(TableModel, on_delete=models.CASCADE, related_name="category_scores")
    score = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "category"], name="one_score_per_category_model")]
