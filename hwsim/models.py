"""Simulation runs, sweeps (groups of runs compared side by side) and the live twin's state.

Outputs are stored compacted (see services.compact_outputs): sampled occupancy with the smaller owners
folded together, residency as bit strings, the first switch events only, and CDF quantiles, so a 100k-
request run stays well under a megabyte. Anything bigger (per-request CSV, Chrome trace) is recomputed
on demand from the stored, fully resolved parameters: runs are seeded and therefore reproducible.
"""
from django.conf import settings
from django.db import models

STATUSES = [("queued", "Queued"), ("running", "Running"), ("done", "Done"), ("failed", "Failed")]


class Sweep(models.Model):
    """A group of runs (machines × policies × maps) run as a Celery chord; `comparison` is its table."""

    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=STATUSES, default="queued", db_index=True)
    comparison = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"sweep #{self.pk} {self.name}"


class SimulationRun(models.Model):
    name = models.CharField(max_length=200, blank=True)
    parameters = models.JSONField(help_text="Resolved parameters: machine, experts, policy, batching, workload, "
                                            "seed (see services.normalise_parameters).")
    status = models.CharField(max_length=10, choices=STATUSES, default="queued", db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(default=dict, blank=True, help_text="Compacted occupancy, residency, switches, "
                                                                   "CDFs and per-expert load.")
    error = models.TextField(blank=True)
    sweep = models.ForeignKey(Sweep, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("start_simulation", "Can start simulation runs, sweeps and the live twin")]

    def __str__(self):
        return f"run #{self.pk} {self.name}"

    @property
    def progress_pct(self):
        if self.status == "done":
            return 100
        return int(100 * self.progress_done / self.progress_total) if self.progress_total else 0


class LiveTwin(models.Model):
    """The live twin's position in the routed decision stream and its latest occupancy snapshot.

    `position` is the id of the last RoutingDecision consumed; `window_start` the id after which the
    current simulator window began (a window is replayed to rebuild the simulator in a new process).
    `ticks` is bumped by each tick that wins the conditional update, so duplicate deliveries of one tick
    change nothing and only the winner schedules the next one; `generation` changes on every start so
    ticks from an earlier start stop.
    """

    name = models.CharField(max_length=60, unique=True, default="default")
    parameters = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=False)
    generation = models.PositiveIntegerField(default=0)
    ticks = models.PositiveBigIntegerField(default=0)
    position = models.BigIntegerField(default=0)
    window_start = models.BigIntegerField(default=0)
    snapshot = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True, help_text="Recent HBM occupancy by kind (bounded).")
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"live twin {self.name}"
