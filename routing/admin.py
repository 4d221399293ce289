"""Django admin for categories (edits go through routing.category_services) and read-only router artifacts."""
from django.contrib import admin, messages

from experts.selectors import current_version_number
from experts.services import MapError, StaleMapVersion

from . import category_services
from .models import Category, RouterModel


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "retired", "seed_count")
    list_filter = ("retired",)
    fields = ("name", "description", "seed_prompts", "retired")
    actions = ["retire_selected"]

    @admin.display(description="seed prompts")
    def seed_count(self, obj):
        return len(obj.seed_prompts)

    def get_readonly_fields(self, request, obj=None):
        return ("retired",)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                old_name = Category.objects.get(pk=obj.pk).name
                category_services.update_category(old_name, request.user, new_name=data["name"],
                                                  description=data["description"],
                                                  seed_prompts=data["seed_prompts"])
            else:
                # a new category starts on the fallback category's expert; change it in the map editor
                from experts.selectors import current_map

                expert = current_map().assignments["general"]
                obj.pk = category_services.add_category(data["name"], expert, current_version_number(),
                                                        data["description"], data["seed_prompts"], request.user).pk
        except (MapError, StaleMapVersion) as exc:
            self.message_user(request, f"Not saved: {exc}", messages.ERROR)

    def has_delete_permission(self, request, obj=None):
        return False  # retire instead: decisions and map versions refer to categories

    @admin.action(description="Retire selected categories (new map version without them)")
    def retire_selected(self, request, queryset):
        for category in queryset:
            try:
                category_services.retire_category(category.name, current_version_number(), request.user)
            except (MapError, StaleMapVersion) as exc:
                self.message_user(request, f"{category.name}: {exc}", messages.ERROR)


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
