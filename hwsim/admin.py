"""Read-only admin: runs, sweeps and the twin are created through the pages, commands and tasks."""
from django.contrib import admin

from .models import LiveTwin, SimulationRun, Sweep


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SimulationRun)
class SimulationRunAdmin(ReadOnly):
    list_display = ("id", "name", "status", "progress_done", "progress_total", "created_by", "created_at")
    list_filter = ("status",)
    exclude = ("outputs",)


@admin.register(Sweep)
class SweepAdmin(ReadOnly):
    list_display = ("id", "name", "status", "created_by", "created_at", "finished_at")


@admin.register(LiveTwin)
class LiveTwinAdmin(ReadOnly):
    list_display = ("name", "enabled", "generation", "ticks", "position", "updated_at")
