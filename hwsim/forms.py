"""The run form: turns the page's fields into run parameters and shows engine errors next to them."""
import json

from django import forms

from hwsim.engine import BATCHING, POLICIES, PRESETS, ConfigError, get_machine

from . import parameters as P
from . import twin

PRESET_CHOICES = [(p, f"{p}: {get_machine(p).description}") for p in PRESETS]


def _ints(text, what):
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise forms.ValidationError(f"{what} must be whole numbers separated by commas") from None


class RunForm(forms.Form):
    machine = forms.ChoiceField(choices=PRESET_CHOICES + [("custom", "custom (JSON below)")], initial="sn40l-8")
    custom_machine = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                     help_text='e.g. {"base": "sn40l-8", "hbm_bw": 2.0e12} or every parameter')
    hbm_tbps = forms.FloatField(required=False, min_value=0.01, label="HBM bandwidth per socket (TB/s, knob)")
    policy = forms.ChoiceField(choices=[(p, p) for p in POLICIES], initial="lru")
    batching = forms.ChoiceField(choices=[(b, b) for b in BATCHING], initial="coe")
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=8)
    experts = forms.ChoiceField(choices=[("map", "current map (or version below)"), ("uniform", "uniform experts")],
                                initial="map")
    map_version = forms.IntegerField(required=False, min_value=1)
    expert_count = forms.IntegerField(required=False, min_value=1, initial=150, label="Uniform experts")
    expert_params_b = forms.FloatField(required=False, min_value=0.001, initial=7.0,
                                       label="Parameters per expert (billions)")
    workload = forms.ChoiceField(choices=[("synthetic", "synthetic (Poisson, Zipf)"),
                                          ("recent", "replay the last N routed decisions"),
                                          ("batch", "replay a routed batch")], initial="synthetic")
    requests = forms.IntegerField(min_value=1, max_value=P.MAX_REQUESTS, initial=2000, label="Requests (N)")
    zipf_s = forms.FloatField(min_value=0, initial=1.0, label="Zipf exponent")
    rate = forms.FloatField(required=False, min_value=0.000001, initial=P.DEFAULT_RATE,
                            label="Arrivals per second (blank: all at once / recorded times)")
    batch_id = forms.IntegerField(required=False, min_value=1)
    output_tokens = forms.IntegerField(min_value=1, max_value=32768, initial=128)
    seed = forms.IntegerField(min_value=0, initial=0)
    compare_machines = forms.MultipleChoiceField(choices=PRESET_CHOICES, required=False,
                                                 initial=["sn40l-8", "dgx-h100"])
    sweep_policies = forms.MultipleChoiceField(choices=[(p, p) for p in POLICIES], required=False)
    sweep_maps = forms.CharField(required=False, label="Map versions (comma separated)")

    def _machine(self, d):
        if d["machine"] != "custom":
            return {"preset": d["machine"], "knobs": {"hbm_bw": d["hbm_tbps"] * 1e12} if d["hbm_tbps"] else {}}
        try:
            custom = json.loads(d["custom_machine"] or "")
        except json.JSONDecodeError as exc:
            self.add_error("custom_machine", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
            return None
        if isinstance(custom, dict) and d["hbm_tbps"]:
            custom = {**custom, "hbm_bw": d["hbm_tbps"] * 1e12}
        return {"custom": custom}

    def clean(self):
        d = super().clean()
        if self.errors:
            return d
        machine = self._machine(d)
        if machine is None:
            return d
        if d["experts"] == "map":
            experts = {"source": "map", "map_version": d["map_version"]}
        else:
            if not d["expert_count"] or not d["expert_params_b"]:
                self.add_error("expert_count", "uniform experts need a count and a size")
                return d
            experts = {"source": "uniform", "count": d["expert_count"], "params": d["expert_params_b"] * 1e9}
        if d["workload"] == "synthetic":
            workload = {"kind": "synthetic", "requests": d["requests"], "zipf_s": d["zipf_s"], "rate": d["rate"]}
        elif d["workload"] == "recent":
            workload = {"kind": "replay", "source": "recent", "count": d["requests"], "rate": d["rate"]}
        else:
            if not d["batch_id"]:
                self.add_error("batch_id", "give the id of the batch to replay")
                return d
            workload = {"kind": "replay", "source": "batch", "batch_id": d["batch_id"], "rate": d["rate"]}
        self.raw = {"machine": machine, "policy": d["policy"], "batching": d["batching"],
                    "batch_size": d["batch_size"], "experts": experts, "workload": workload,
                    "output_tokens": d["output_tokens"], "seed": d["seed"]}
        try:
            self.maps = _ints(d["sweep_maps"], "map versions")
        except forms.ValidationError as exc:
            self.add_error("sweep_maps", exc)
            return d
        try:
            self.parameters = P.normalise(self.raw)
        except ConfigError as exc:
            self.add_error(None, str(exc))
        return d


class TwinForm(forms.Form):
    machine = forms.ChoiceField(choices=PRESET_CHOICES, initial="sn40l-8")
    policy = forms.ChoiceField(choices=[(p, p) for p in twin.TWIN_POLICIES], initial="lru")
    batching = forms.ChoiceField(choices=[(b, b) for b in BATCHING], initial="coe")
    output_tokens = forms.IntegerField(min_value=1, max_value=32768, initial=128)

    def clean(self):
        d = super().clean()
        if not self.errors:
            self.raw = {"machine": {"preset": d["machine"]}, "policy": d["policy"], "batching": d["batching"],
                        "output_tokens": d["output_tokens"]}
        return d
