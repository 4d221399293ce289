"""Forms shared by the in-app editor and Django admin."""
from django import forms
from django.forms.models import fields_for_model, model_to_dict

from . import selectors, services
from .models import Expert

# (title, backend it applies to or "" for all, fields): the in-app form and the admin's fieldsets.
BACKEND_GROUPS = [
    ("How it is served", "", ("backend", "timeout_s", "connect_timeout_s", "first_token_timeout_s", "max_retries",
                              "generation")),
    ("OpenAI-compatible server", "openai", ("base_url", "upstream_model", "api_key_env")),
    ("Local transformers model", "transformers", ("model_path", "device")),
    ("Simulated", "simulated", ("sim_preset", "sim_time_scale")),
]
BACKEND_FIELDS = [f for _, _, fields in BACKEND_GROUPS for f in fields]
assert set(BACKEND_FIELDS) == set(services.BACKEND_FIELDS), "every backend setting is shown, and only those"


class ExpertBackendForm(type("BackendFields", (forms.Form,), fields_for_model(Expert, fields=BACKEND_FIELDS))):
    """One expert's backend settings. Field types come from the model; the rules (an openai backend needs a
    base_url, …) are the service's (services.check_expert, run by save_expert), so its MapError is shown on the form
    rather than duplicated here."""

    def __init__(self, expert, data=None):
        super().__init__(data, initial=model_to_dict(expert, BACKEND_FIELDS), auto_id=f"id_{expert.pk}_%s")
        self.expert = expert
        self.api_key_set = selectors.expert_dict(expert)["backend"]["api_key_set"]  # never the key itself

    def groups(self):
        return [(title, kind, [self[f] for f in fields]) for title, kind, fields in BACKEND_GROUPS]

    def save(self, user):
        """True when saved; False with the service's refusal as a form error."""
        if not self.is_valid():
            return False
        data = {**self.cleaned_data, "generation": self.cleaned_data["generation"] or {}}
        try:
            services.save_expert(name=self.expert.name, data=data, user=user)
        except services.MapError as exc:
            self.add_error(None, str(exc))
            return False
        return True
