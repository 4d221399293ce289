"""The catalog: categories, experts (with how each is served), immutable map versions (category → expert), the audit
log."""
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

BACKENDS = [("simulated", "Simulated (hwsim cost model, no real text)"), ("openai", "OpenAI-compatible server"),
            ("transformers", "Local transformers model")]


class Category(models.Model):
    name = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    seed_prompts = models.JSONField(default=list, blank=True, help_text="Labelled examples the router trains on.")
    retired = models.BooleanField(default=False)

    class Meta:
        db_table = "routing_category"  # moved here from routing without touching the table (state-only migration)
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


class Expert(models.Model):
    name = models.CharField(max_length=80, unique=True, validators=[RegexValidator(
        r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "Letters, digits, dots, hyphens and underscores, e.g. llama-3.1-70b.")],
        help_text="Short name used in maps, the API and as the model name at /v1.")
    model_id = models.CharField(max_length=200, help_text="Upstream model identifier, e.g. Qwen/Qwen2-7B-Instruct.")
    parameters = models.BigIntegerField(help_text="Total parameter count.")
    active_parameters = models.BigIntegerField(null=True, blank=True,
                                               help_text="Parameters active per token (mixture-of-experts); "
                                                         "blank = all.")
    bytes_per_parameter = models.FloatField(default=2.0, help_text="2 for BF16/FP16, 1 for INT8/FP8.")
    context_length = models.PositiveIntegerField(default=8192)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    # How the expert answers (experts/backends). Secrets are never stored: only the name of the environment
    # variable that holds the API key on the serving machines.
    backend = models.CharField(max_length=20, choices=BACKENDS, default="simulated")
    base_url = models.CharField(max_length=500, blank=True, help_text="openai: e.g. http://vllm:8000/v1")
    upstream_model = models.CharField(max_length=200, blank=True, help_text="openai: model name at the upstream "
                                                                            "(blank = model id).")
    api_key_env = models.CharField(max_length=100, blank=True, validators=[RegexValidator(
        r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable name, e.g. VLLM_API_KEY.")],
        help_text="openai: name of the environment variable holding the API key (the key itself is never stored).")
    timeout_s = models.FloatField(default=60.0, help_text="Longest a whole answer may take, per attempt.")
    connect_timeout_s = models.FloatField(default=5.0)
    first_token_timeout_s = models.FloatField(default=30.0, help_text="Longest wait for the first token.")
    max_retries = models.PositiveSmallIntegerField(default=2, help_text="Retries before any token arrived.")
    model_path = models.CharField(max_length=500, blank=True, help_text="transformers: local model directory.")
    device = models.CharField(max_length=20, default="cpu", help_text="transformers: cpu, cuda, cuda:1, …")
    generation = models.JSONField(default=dict, blank=True,
                                  help_text='Default generation settings, e.g. {"max_new_tokens": 256}.')
    sim_preset = models.CharField(max_length=40, default="sn40l-16", help_text="simulated: hwsim machine preset.")
    sim_time_scale = models.FloatField(default=1.0, help_text="simulated: wall-clock seconds per simulated second "
                                                              "(0 = answer at once).")

    class Meta:
        ordering = ["parameters", "name"]

    def __str__(self):
        return self.name

    @property
    def simulated(self):
        """Its answers are placeholder text at simulated speed: every answer and page must say so."""
        return self.backend == "simulated"

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
    """A category's expert in one version; optionally a traffic split: the share ``split_share`` of the category's
    prompts (those whose stable text key is below it) goes to ``split_expert`` instead — a canary for a new expert,
    an A/B test, or the designer's maps that split one category to spend a budget exactly."""

    version = models.ForeignKey(MapVersion, on_delete=models.CASCADE, related_name="assignments")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+")
    expert = models.ForeignKey(Expert, on_delete=models.PROTECT, related_name="assignments")
    split_expert = models.ForeignKey(Expert, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    split_share = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "category"], name="one_expert_per_category"),
            models.CheckConstraint(
                condition=models.Q(split_expert__isnull=True, split_share=0.0)
                | models.Q(split_expert__isnull=False, split_share__gt=0.0, split_share__lt=1.0),
                name="split_share_between_0_and_1"),
        ]


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
