"""Django admin for categories, experts and map versions. Every save goes through experts.services (audit + broadcast).

Map versions are immutable snapshots: the change page is read-only; "add" shows one expert choice per category and
publishes a new version through the same service as the in-app editor; an action rolls back to a selected version.
"""
from django import forms
from django.contrib import admin, messages

from access.roles import can_edit_backends

from . import category_services, services
from .forms import BACKEND_GROUPS
from .models import AuditEntry, Category, Expert, MapAssignment, MapVersion
from .selectors import active_categories, current_map, current_version_number, expert_dict


class ExpertForm(forms.ModelForm):
    """Runs services.check_expert (which writes nothing) while validating, so the service's refusals (an openai
    backend without base_url, disabling a mapped expert, a host the deployment does not allow, …) are shown on the
    form instead of after a 'saved' redirect. ``user``: set per request by ExpertAdmin.get_form."""

    user = None

    def clean(self):
        data = super().clean()
        name = self.instance.name if self.instance.pk else data.get("name")
        if name and not self.errors:
            try:
                services.check_expert(name=name, data=_expert_data(data), user=self.user)
            except (services.MapError, services.BackendsForbidden) as exc:
                raise forms.ValidationError(str(exc))
        return data


def _expert_data(cleaned):
    data = {f: cleaned[f] for f in services.EXPERT_FIELDS if f in cleaned}
    if "generation" in data and data["generation"] is None:
        data["generation"] = {}
    return data


SERVED_BY = {"openai": "Used when the backend is “OpenAI-compatible server”: an OpenAI-compatible HTTP server such "
                       "as vLLM, TGI or llama.cpp. The API key is read from the named environment variable on the "
                       "serving machines at call time; it is never stored or shown.",
             "transformers": "Used when the backend is “Local transformers model”: the model is loaded in the web "
                             "and worker processes.",
             "simulated": "Used when the backend is “Simulated”: placeholder text at the speed the hardware simulator "
                          "predicts, clearly labelled as simulated. No real model is called."}


@admin.register(Expert)
class ExpertAdmin(admin.ModelAdmin):
    form = ExpertForm
    list_display = ("name", "model_id", "parameters", "active_parameters", "context_length", "enabled", "backend",
                    "api_key_set")
    list_filter = ("enabled", "backend")
    fieldsets = [
        (None, {"fields": ("name", "model_id", "parameters", "active_parameters", "bytes_per_parameter",
                           "context_length", "enabled", "description")}),
        *[(title, {"fields": (*fields, "api_key_set") if kind == "openai" else fields,
                   "description": SERVED_BY.get(kind, "Which backend answers for this expert, and the limits every "
                                                      "backend's calls run under (retries happen only before the "
                                                      "first token).")})
          for title, kind, fields in BACKEND_GROUPS],
    ]
    help_texts = {"backend": "Where answers come from. Edits take effect on the next call, without a restart.",
                  "connect_timeout_s": "Longest wait to open a connection to the server.",
                  "max_retries": "Retries of the same expert before any token arrived; then the fallback expert "
                                 "answers."}

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, help_texts=self.help_texts, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def get_readonly_fields(self, request, obj=None):
        """Backend settings are read-only unless the user may change them (access.edit_backends)."""
        fields = ("name", "api_key_set") if obj else ("api_key_set",)
        return fields if can_edit_backends(request.user) else (*fields, *services.BACKEND_FIELDS)

    @admin.display(boolean=True, description="API key set?")
    def api_key_set(self, obj):
        """Whether the named environment variable is set in this process (the key itself is never shown)."""
        return bool(obj.pk) and expert_dict(obj)["backend"]["api_key_set"]

    def save_model(self, request, obj, form, change):
        try:
            saved = services.save_expert(name=obj.name, data=_expert_data(form.cleaned_data), user=request.user)
        except (services.MapError, services.BackendsForbidden) as exc:  # changed since the form was validated
            self.message_user(request, f"Not saved: {exc}", messages.ERROR)
            return
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False  # experts are disabled, never deleted: decisions and versions refer to them


class MapAssignmentInline(admin.TabularInline):
    model = MapAssignment
    fields = ("category", "expert", "split_expert", "split_share")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class NewMapVersionForm(forms.ModelForm):
    class Meta:
        model = MapVersion
        fields = ("note",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        snap = current_map()
        experts = [(e.name, e.name) for e in Expert.objects.filter(enabled=True)]
        # the version this form was opened on: a version published meanwhile makes the save stale, as in the editor
        self.fields["base_version"] = forms.IntegerField(widget=forms.HiddenInput, initial=current_version_number())
        for category in active_categories():
            name, split = category.name, (snap.splits.get(category.name) if snap else None)
            self.fields[f"assign_{name}"] = forms.ChoiceField(
                label=name, choices=experts, initial=snap.assignments.get(name) if snap else None)
            self.fields[f"split_{name}"] = forms.ChoiceField(
                label=f"{name}: split to", choices=[("", "none"), *experts], required=False,
                initial=split["expert"] if split else "", help_text="Optional: another expert for a share of this category.")
            self.fields[f"share_{name}"] = forms.FloatField(
                label=f"{name}: split share (%)", required=False, min_value=0.1, max_value=99.9,
                initial=round(split["share"] * 100, 1) if split else None)

    def clean(self):
        """Field checks, then the map service's own check (services.check_map, which writes nothing), so a stale
        base version or any other refusal is shown on the form."""
        data = super().clean()
        for key in [k for k in self.fields if k.startswith("split_")]:
            if data.get(key) and data.get(f"share_{key[6:]}") is None:
                self.add_error(f"share_{key[6:]}", "Give the share (%) sent to the split expert.")
        if not self.errors:
            try:
                services.check_map(base_version=data["base_version"], assignments=self.assignments(),
                                   splits=self.splits())
            except (services.MapError, services.StaleMapVersion) as exc:
                raise forms.ValidationError(str(exc))
        return data

    def assignments(self):
        return {k[7:]: v for k, v in self.cleaned_data.items() if k.startswith("assign_")}

    def splits(self):
        """{category: {"expert", "share"}} from the split fields (shares typed in percent)."""
        data = self.cleaned_data
        return services.splits_from_percent((k[6:], v, data.get(f"share_{k[6:]}")) for k, v in data.items()
                                            if k.startswith("split_"))


@admin.register(MapVersion)
class MapVersionAdmin(admin.ModelAdmin):
    list_display = ("number", "created_at", "author", "note", "rolled_back_from")
    inlines = [MapAssignmentInline]
    actions = ["roll_back_to_selected"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            return NewMapVersionForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            form = NewMapVersionForm()
            return [(None, {"fields": ["note", "base_version", *[f for f in form.fields if f.startswith("assign_")]]}),
                    ("Traffic splits", {"fields": [f for f in form.fields if f.startswith(("split_", "share_"))],
                                        "classes": ["collapse"]})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return ("number", "created_at", "author", "note", "rolled_back_from") if obj else ()

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def save_model(self, request, obj, form, change):
        version = services.publish_map(base_version=form.cleaned_data["base_version"], assignments=form.assignments(),
                                       note=form.cleaned_data.get("note", ""), user=request.user,
                                       splits=form.splits())
        obj.pk, obj.number = version.pk, version.number

    def save_related(self, request, form, formsets, change):
        """Assignments were written by the service."""

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Roll back to the selected version (creates a new version)")
    def roll_back_to_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to roll back to.", messages.ERROR)
            return
        old = queryset.get()
        try:
            new = services.rollback_map(version_number=old.number, user=request.user)
        except (services.MapError, services.StaleMapVersion) as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"v{new.number} restores v{old.number}.")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_name")
    list_filter = ("object_type", "action")
    readonly_fields = ("at", "actor", "action", "object_type", "object_name", "changes")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
                category_services.update_category(name=old_name, user=request.user, new_name=data["name"],
                                                  description=data["description"],
                                                  seed_prompts=data["seed_prompts"])
            else:
                # a new category starts on the fallback category's expert; change it in the map editor
                expert = current_map().assignments["general"]
                obj.pk = category_services.add_category(
                    name=data["name"], expert=expert, base_version=current_version_number(),
                    description=data["description"], seed_prompts=data["seed_prompts"], user=request.user).pk
        except (services.MapError, services.StaleMapVersion) as exc:
            self.message_user(request, f"Not saved: {exc}", messages.ERROR)

    def has_delete_permission(self, request, obj=None):
        return False  # retire instead: decisions and map versions refer to categories

    @admin.action(description="Retire selected categories (new map version without them)")
    def retire_selected(self, request, queryset):
        for category in queryset:
            try:
                category_services.retire_category(name=category.name, base_version=current_version_number(),
                                                  user=request.user)
            except (services.MapError, services.StaleMapVersion) as exc:
                self.message_user(request, f"{category.name}: {exc}", messages.ERROR)
