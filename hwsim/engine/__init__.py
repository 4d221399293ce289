"""hwsim engine: a pure-Python (stdlib + numpy) simulator of serving a Composition of Experts on
SN40L RDUs or DGX GPU nodes, with their memory tiers.  No Django here: the hwsim app wraps it.

Typical use:
    machine = get_machine("sn40l-8")
    experts = [ExpertSpec("Qwen2-7B-Instruct", 7.62e9), ...]
    result = simulate(SimConfig(machine, experts, policy="lru"), synthetic(10_000, [e.name for e in experts]))
    result.summary(); result.occupancy(); to_csv(result, "requests"); chrome_trace(result)
"""
from .costs import CostModel, decode_tokens_per_s
from .errors import ConfigError
from .estimates import switches_for
from .experts import ExpertSpec, expert_from_dict, uniform_experts
from .memory import Layout
from .metrics import SimResult
from .policies import POLICIES
from .loading import LOADERS, MEDIA, load_path
from .presets import PRESETS, Machine, Param, get_machine, loading_preset, machine_from_dict
from .simulator import BATCHING, SimConfig, Simulator, hot_set, simulate
from .trace import TABLES, chrome_trace, to_csv
from .validation import coe_latency_report, markdown_sensitivity, markdown_table, sensitivity, validate
from .workloads import Workload, replay, synthetic

__all__ = [
    "BATCHING", "LOADERS", "MEDIA", "POLICIES", "PRESETS", "TABLES", "ConfigError", "CostModel", "ExpertSpec",
    "Layout", "Machine", "Param", "SimConfig", "SimResult", "Simulator", "Workload", "chrome_trace",
    "coe_latency_report", "decode_tokens_per_s", "expert_from_dict", "get_machine", "hot_set", "load_path",
    "loading_preset", "machine_from_dict", "markdown_sensitivity", "markdown_table", "replay", "sensitivity",
    "simulate", "switches_for", "synthetic", "to_csv", "uniform_experts", "validate",
]
