"""Django admin: read-only router artifacts."""
from django.contrib import admin

from .models import RouterModel


@admin.register(RouterModel)
class RouterModelAdmin(admin.ModelAdmin):
    list_display = ("version", "is_active", "classifier", "training_size", "created_at")
    exclude = ("artifact",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in RouterModel._meta.fields if f.name != "artifact"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
