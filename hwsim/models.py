"""Simulation runs, sweeps (groups of runs compared side by side), their stored downloads and the live twin.

Outputs are stored compacted (see services.compact_outputs): sampled occupancy with the smaller owners
folded together, residency as bit strings, the first switch events only, and CDF quantiles, so a 100k-
request run stays well under a megabyte. The big downloads (per-request CSV, Chrome trace) are written once, by
the worker that ran the simulation, as gzip streams cut into parts (RunExport, RunExportPart): every web process
reads the same rows and no request recomputes a run.

A run is pending work in the database: `queued_at` is when a worker was last woken for it, `claimed_by` /
`claimed_at` the worker that holds it and when it last showed signs of life, so the reconciler can wake a worker
again for a run whose message or worker was lost.
"""
from django.conf import settings
from django.db import models

STATUSES = [("queued", "Queued"), ("running", "Running"), ("done", "Done"), ("failed", "Failed")]
FINAL = ("done", "failed")
# Stored downloads of a run: "" none (a run from before they were stored: "prepare downloads" asks for them),
# "pending" (written by the run's worker, or by the export job once asked), "ready", "failed" (with the reason).
EXPORT_STATUSES = [("", "Not stored"), ("pending", "Pending"), ("ready", "Ready"), ("failed", "Failed")]


class Sweep(models.Model):
    """A group of runs (machines × policies × maps); the run that finishes last (or the reconciler) closes it and
    stores `comparison`, its table."""

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
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When a worker was last woken for it.")
    claimed_by = models.CharField(max_length=80, blank=True, help_text="The claim token of the worker on it.")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="Claimed or last renewed (progress).")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    exports_status = models.CharField(max_length=10, choices=EXPORT_STATUSES, default="", blank=True, db_index=True)
    exports_token = models.CharField(max_length=80, blank=True, help_text="The claim whose RunExports are served.")
    exports_error = models.TextField(blank=True)

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


class RunExport(models.Model):
    """One download of a run (``requests.csv`` …, ``trace.json``): a gzip stream of `size` bytes stored as `parts`
    rows of at most exports.PART_BYTES (`stored` bytes in all). `token` is the claim that wrote it: the run serves
    the exports of its `exports_token`, and a writer whose claim was taken over leaves rows nobody serves (deleted
    when the winner finishes)."""

    run = models.ForeignKey(SimulationRun, on_delete=models.CASCADE, related_name="exports")
    token = models.CharField(max_length=80)
    name = models.CharField(max_length=40)
    size = models.PositiveBigIntegerField(default=0)
    stored = models.PositiveBigIntegerField(default=0)
    parts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "token", "name"], name="hwsim_export_once")]

    def __str__(self):
        return f"run #{self.run_id} {self.name}"


class RunExportPart(models.Model):
    export = models.ForeignKey(RunExport, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["export", "index"], name="hwsim_export_part_once")]


class LiveTwin(models.Model):
    """The live twin's position in the routed decision stream and its latest occupancy snapshot.

    `position` is the id of the last RoutingDecision consumed; `window_start` the id after which the
    current simulator window began (a window is replayed to rebuild the simulator in a new process).
    `ticks` is bumped by each tick that wins the conditional update, so duplicate deliveries of one tick
    change nothing and only the winner schedules the next one; `generation` changes on every start so
    ticks from an earlier start stop. `ticked_at` is when the last tick won: the reconciler sends a tick when it
    is old, so a lost tick message does not stop the twin.
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
    ticked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"live twin {self.name}"
