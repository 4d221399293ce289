"""Machine descriptions with per-parameter provenance, the presets, and user-defined machines.

Every number carries its unit, a citation and its kind (published, derived, calibrated on a named measurement, or
an assumption), because the dashboard shows operators *why* the simulator believes a switch or a decode step costs
what it does.  Calibrations run the cost model itself (`step_overhead_calibration`), so a preset stays consistent
with the model that uses it.  Values are SI
(bytes, B/s, FLOP/s, seconds).  Compute and HBM are per socket; an expert is tensor-parallel across all
sockets of all nodes, so the cost model multiplies them out.  Home-tier capacity and the home->HBM link
are per node, because that is how both vendors publish them.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from numbers import Real
from types import MappingProxyType

from . import references as ref
from .errors import ConfigError
from .experts import LLAMA2_7B, LLAMA31_8B, ExpertSpec
from .loading import LOADER_NAMES, MEDIUM_NAMES, load_path

KiB, MiB, GiB, TiB = 2**10, 2**20, 2**30, 2**40
# published: a figure as its source gives it; derived: arithmetic on published figures; calibrated: fitted to
# one named measurement that is not a validation target; assumption: a stated guess, a knob; user: typed in.
KINDS = ("published", "derived", "calibrated", "assumption", "user")

# name -> (unit, meaning, must be an integer)
SPEC = {
    "sockets_per_node": ("sockets", "accelerator sockets per node", True),
    "nodes": ("nodes", "nodes the expert is spread over", True),
    "peak_flops": ("FLOP/s", "dense BF16 peak per socket", False),
    "sram_bytes": ("B", "on-chip SRAM per socket (L2 cache on GPUs)", False),
    "hbm_bytes": ("B", "HBM capacity per socket", False),
    "hbm_bw": ("B/s", "HBM bandwidth per socket", False),
    "home_bytes": ("B", "capacity of the tier experts live in (DDR, or host DRAM on DGX) per node", False),
    "link_bw": ("B/s", "home tier -> HBM bandwidth per node", False),
    "switch_overhead": ("s", "fixed cost of one expert switch", False),
    "compute_eff": ("1", "fraction of peak FLOP/s reached by prefill/decode kernels", False),
    "memory_eff": ("1", "fraction of peak HBM bandwidth reached by prefill/decode kernels", False),
    "step_overhead": ("s", "time of each forward pass beyond the roofline (kernel launches, host scheduling, "
                           "small-batch inefficiency)", False),
    "allreduce_s": ("s", "latency of one small all-reduce across all sockets; a tensor-parallel pass does two per "
                         "layer (0: fused into the kernels)", False),
}
# Parameters that machines stored before they existed may lack: they then default to 0 (no such cost).
OPTIONAL = ("step_overhead", "allreduce_s")
HOME_TIERS = ("DDR", "host", "NVMe")


@dataclass(frozen=True)
class Param:
    """One machine parameter and where it comes from."""

    value: float
    unit: str
    source: str
    kind: str

    def to_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit, "source": self.source, "kind": self.kind}


@dataclass(frozen=True, eq=False)
class Machine:
    """A serving node (or group of nodes) as the simulator sees it; build with `machine_from_dict`."""

    name: str
    home_tier: str
    params: MappingProxyType
    description: str = ""

    def v(self, key: str) -> float:
        return self.params[key].value

    @property
    def sockets(self) -> int:
        return int(self.v("sockets_per_node") * self.v("nodes"))

    @property
    def hbm_total(self) -> float:
        return self.sockets * self.v("hbm_bytes")

    @property
    def sram_total(self) -> float:
        return self.sockets * self.v("sram_bytes")

    @property
    def home_total(self) -> float:
        return self.v("nodes") * self.v("home_bytes")

    @property
    def link_total(self) -> float:
        return self.v("nodes") * self.v("link_bw")

    def provenance(self) -> list[dict]:
        """Rows for the provenance table: name, meaning, value, unit, source, kind."""
        return [{"name": k, "meaning": SPEC[k][1], **self.params[k].to_dict()} for k in SPEC]

    def to_dict(self) -> dict:
        """JSON-safe form that `machine_from_dict` reads back (for storing a run's machine)."""
        return {"name": self.name, "home_tier": self.home_tier, "description": self.description,
                "params": {k: self.params[k].to_dict() for k in SPEC}}

    def with_values(self, name: str | None = None, **values: float) -> "Machine":
        """A copy with some parameters turned like knobs (kind 'user'), e.g. hbm_bw=2.0e12."""
        params = {k: p.to_dict() for k, p in self.params.items()}
        for k, val in values.items():
            if k not in SPEC:
                raise ConfigError(f"unknown machine parameter {k!r}; known: {', '.join(SPEC)}")
            params[k] = val
        return machine_from_dict({"name": name or self.name, "home_tier": self.home_tier,
                                  "description": self.description, "params": params})


def _param(key: str, raw) -> Param:
    unit = SPEC[key][0]
    if isinstance(raw, Param):
        raw = raw.to_dict()
    if isinstance(raw, dict):
        unknown = set(raw) - {"value", "unit", "source", "kind"}
        if unknown or "value" not in raw:
            raise ConfigError(f"parameter {key!r} needs 'value' (and may have unit/source/kind), got {sorted(raw)}")
        if raw.get("unit", unit) != unit:
            raise ConfigError(f"parameter {key!r} must be given in {unit}, not {raw['unit']}")
        value, source, kind = raw["value"], raw.get("source", "user input"), raw.get("kind", "user")
    else:
        value, source, kind = raw, "user input", "user"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"parameter {key!r} must be a number, got {value!r}")
    if kind not in KINDS:
        raise ConfigError(f"parameter {key!r} kind must be one of {KINDS}, got {kind!r}")
    value = float(value)
    if SPEC[key][2] and (value != int(value) or value < 1):
        raise ConfigError(f"parameter {key!r} must be a whole number >= 1, got {value}")
    if key in ("switch_overhead",) + OPTIONAL:
        if value < 0 or value != value:
            raise ConfigError(f"parameter {key!r} must be >= 0 s, got {value}")
    elif value <= 0 or value != value:
        raise ConfigError(f"parameter {key!r} must be > 0, got {value}")
    if key in ("compute_eff", "memory_eff") and value > 1:
        raise ConfigError(f"parameter {key!r} is a fraction of peak and must be <= 1, got {value}")
    return Param(value, unit, str(source), kind)


def machine_from_dict(data: dict) -> Machine:
    """Build and validate a machine from a dict.

    Accepts {"name", "home_tier", "description", "params": {...}} or the params flat at top level, and
    {"base": "<preset>"} to start from a preset and override some parameters.  A parameter is either a
    number (recorded as kind 'user') or {"value", "unit", "source", "kind"}.
    """
    if not isinstance(data, dict):
        raise ConfigError("a machine must be given as a dict")
    data = dict(data)
    base = data.pop("base", None)
    params = dict(data.pop("params", {}))
    name = data.pop("name", None)
    home_tier = data.pop("home_tier", None)
    description = data.pop("description", "")
    for k in list(data):
        if k in SPEC:
            params[k] = data.pop(k)
    if data:
        raise ConfigError(f"unknown machine fields {sorted(data)}; parameters are: {', '.join(SPEC)}")
    if base is not None:
        start = get_machine(base)
        merged = {k: p.to_dict() for k, p in start.params.items()}
        merged.update(params)
        params, name = merged, name or f"{start.name} (custom)"
        home_tier = home_tier or start.home_tier
    for k in OPTIONAL:
        params.setdefault(k, {"value": 0.0, "source": "not given: no such cost", "kind": "user"})
    missing = [k for k in SPEC if k not in params]
    if missing:
        raise ConfigError(f"machine is missing parameters: {', '.join(missing)}")
    unknown = [k for k in params if k not in SPEC]
    if unknown:
        raise ConfigError(f"unknown machine parameters {unknown}; known: {', '.join(SPEC)}")
    if not name or not isinstance(name, str):
        raise ConfigError("a machine needs a non-empty 'name'")
    home_tier = home_tier or "DDR"
    if home_tier not in HOME_TIERS:
        raise ConfigError(f"home_tier must be one of {HOME_TIERS}, got {home_tier!r}")
    built = {k: _param(k, params[k]) for k in SPEC}
    return Machine(name, home_tier, MappingProxyType(built), str(description))


def sn40l_link_calibration() -> tuple[float, float]:
    """(link B/s per node, fixed overhead s) solved from the two published SN40L switch times.

    switch = overhead + bytes / (nodes * link).  The SN40L paper gives 13.5 ms for Llama-2-7B on one 8-socket
    node; Hot Chips 2024 gives ~10 ms for Llama-3.1-8B on two nodes.  Two equations, two unknowns.
    """
    b1, n1, t1 = ref.LLAMA2_7B_PARAMS * ref.BF16_BYTES, 1, ref.SN40L8_SWITCH_7B_MS / 1e3
    b2, n2, t2 = ref.LLAMA31_8B_PARAMS * ref.BF16_BYTES, 2, ref.SN40L16_SWITCH_8B_MS / 1e3
    link = (b1 / n1 - b2 / n2) / (t1 - t2)
    return link, t1 - b1 / (n1 * link)


def step_overhead_calibration(machine: Machine, expert: ExpertSpec, prompt: int, output: int,
                              measured_s: float) -> float:
    """Per-pass overhead that makes one batch-1 request (`prompt` tokens in, `output` out) take `measured_s` on
    `machine` (whose own step_overhead is ignored).  A request is one prefill pass and output-1 decode passes,
    and the roofline and all-reduce parts are the cost model's, so: overhead = (measured - model) / output."""
    from .costs import CostModel

    bare = machine.with_values(step_overhead=0.0)
    return (measured_s - CostModel(bare, [expert]).request_seconds(0, prompt, output)) / output


def decode_step_calibration(machine: Machine, expert: ExpertSpec, tokens_per_s: float) -> float:
    """Per-pass overhead that makes one batch-1 decode step of `expert` take 1 / tokens_per_s on `machine`."""
    from .costs import CostModel

    bare = machine.with_values(step_overhead=0.0)
    return 1.0 / tokens_per_s - CostModel(bare, [expert]).decode(0, 1, 1, 1)


_SN40L = ref.full("sn40l")
_EFF = "assumption: typical fraction of peak reached by tuned LLM kernels; a knob, not a measurement"


def _sn40l(nodes: int) -> Machine:
    link, overhead = sn40l_link_calibration()
    fit = ("calibrated with switch_overhead on the SN40L paper's 13.5 ms (Llama-2-7B, 8 sockets) and Hot Chips "
           "2024's ~10 ms (Llama-3.1-8B, 16 sockets), assuming the link scales with nodes")
    machine = machine_from_dict({
        "name": f"sn40l-{8 * nodes}", "home_tier": "DDR",
        "description": f"{nodes} SambaNova SN40L node(s), 8 RDU sockets each, three memory tiers",
        "params": {
            "sockets_per_node": {"value": 8, "source": f"{_SN40L}: 8 sockets per node", "kind": "published"},
            "nodes": {"value": nodes, "source": "preset choice", "kind": "derived"},
            "peak_flops": {"value": 638e12, "source": f"{_SN40L}: 638 BF16 TFLOPS per socket",
                           "kind": "published"},
            "sram_bytes": {"value": 520 * MiB, "source": f"{_SN40L}: 520 MiB on-chip SRAM per socket",
                           "kind": "published"},
            "hbm_bytes": {"value": 64 * GiB, "source": f"{_SN40L}: 64 GiB HBM per socket", "kind": "published"},
            "hbm_bw": {"value": 1.8e12, "kind": "assumption",
                       "source": "midpoint of the 1.6-2.0 TB/s per-socket range quoted for SN40L HBM; a knob"},
            "home_bytes": {"value": 8 * 1.5 * TiB, "kind": "derived",
                           "source": f"8 sockets x 1.5 TiB DDR per socket ({_SN40L})"},
            "link_bw": {"value": link, "kind": "calibrated",
                        "source": fit + "; consistent with the paper's 'over 1 TB/s' DDR->HBM per node"},
            "switch_overhead": {"value": overhead, "kind": "calibrated", "source": fit},
            "compute_eff": {"value": 0.6, "kind": "assumption", "source": _EFF},
            "memory_eff": {"value": ref.SN40L_HBM_FRACTION, "kind": "published",
                           "source": f"{_SN40L}, VI-B/VI-C: streaming dataflow saturates close to 85% of HBM "
                                     "bandwidth"},
            "step_overhead": {"value": 0.0, "kind": "calibrated", "source": "set below"},
            "allreduce_s": {"value": 0.0, "kind": "assumption",
                            "source": f"{_SN40L}, VII: collectives are fused and pipelined into the kernels, so "
                                      "their cost is inside step_overhead"},
        }})
    if nodes == 1:
        measured = ref.ARGONNE_SN40L8_S
        value = step_overhead_calibration(machine, LLAMA2_7B, ref.ARGONNE_PROMPT, ref.ARGONNE_OUTPUT, measured)
        source = (f"calibrated: Llama-2-7B, batch 1, 128 tokens in and out, {measured * 1e3:.1f} ms on SN40L-8 "
                  f"with SambaFlow ({ref.full('argonne')})")
    else:
        rate = ref.SN40L16_LLAMA31_8B_TOKENS_PER_S
        value = decode_step_calibration(machine, LLAMA31_8B, rate)
        source = (f"calibrated: Llama 3.1 8B decodes at {rate:g} tokens/s per user on 16 sockets ({_SN40L}, "
                  "Table IV; a later software release than the Samba-CoE measurements)")
    return machine.with_values(step_overhead={"value": value, "kind": "calibrated", "source": source})


def _dgx(gpu: str, tflops: float, l2: float, bw: float, link: float, link_src: str, link_kind: str = "derived",
         suffix: str = "", home_tier: str = "host", home: dict | None = None, about: str = "") -> Machine:
    sheet = f"NVIDIA {gpu} SXM datasheet"
    ar = ref.NCCL_ALLREDUCE_US[8] * 1e-6
    ar_src = (f"{ref.full('nccl123')}: {ref.NCCL_ALLREDUCE_US[8]:g} us for 8 GPUs" +
              ("" if gpu == "A100" else "; no 8x H100 small-message figure was found, so the DGX-A100 one is used"))
    machine = machine_from_dict({
        "name": f"dgx-{gpu.lower()}{suffix}", "home_tier": home_tier,
        "description": f"NVIDIA DGX {gpu}: 8 x {gpu} 80 GB; {about or 'experts beyond HBM spill to host memory'}",
        "params": {
            "sockets_per_node": {"value": 8, "source": f"DGX {gpu}: 8 GPUs", "kind": "published"},
            "nodes": {"value": 1, "source": "preset choice", "kind": "derived"},
            "peak_flops": {"value": tflops * 1e12, "source": f"{sheet}: {tflops:g} dense BF16 TFLOPS",
                           "kind": "published"},
            "sram_bytes": {"value": l2, "source": f"{sheet}: {l2 / 1e6:g} MB L2 cache", "kind": "published"},
            "hbm_bytes": {"value": 80e9, "source": f"{sheet}: 80 GB HBM", "kind": "published"},
            "hbm_bw": {"value": bw, "source": f"{sheet}: {bw / 1e12:g} TB/s", "kind": "published"},
            "home_bytes": home or {"value": 2 * TiB, "kind": "published",
                                   "source": f"DGX {gpu} user guide: 2 TB system memory (32 DIMMs of 64 GB, binary "
                                             "capacities, so 2 TiB)"},
            "link_bw": {"value": link, "source": link_src, "kind": link_kind},
            "switch_overhead": {"value": 0.0, "kind": "assumption",
                                "source": "no fixed part: the SN40L paper's ratios and the loading calibrations "
                                          "are plain bandwidths"},
            "compute_eff": {"value": 0.6, "kind": "assumption", "source": _EFF},
            "memory_eff": {"value": 0.8, "kind": "assumption", "source": _EFF},
            "step_overhead": {"value": 0.0, "kind": "calibrated", "source": "set below"},
            "allreduce_s": {"value": ar, "kind": "published" if gpu == "A100" else "assumption", "source": ar_src},
        }})
    measured = ref.ARGONNE_TRTLLM_S[(gpu, 1)]
    one_gpu = machine.with_values(sockets_per_node=1)
    value = step_overhead_calibration(one_gpu, LLAMA2_7B, ref.ARGONNE_PROMPT, ref.ARGONNE_OUTPUT, measured)
    source = (f"calibrated: Llama-2-7B, batch 1, 128 tokens in and out, {measured * 1e3:.1f} ms on one {gpu} with "
              f"TensorRT-LLM ({ref.full('argonne')}); assumed the same per pass under tensor parallelism, where "
              "the all-reduces are added")
    return machine.with_values(step_overhead={"value": value, "kind": "calibrated", "source": source})


def _dgx_paper(gpu: str, tflops: float, l2: float, bw: float, link: float) -> Machine:
    src = (f"{_SN40L}, VI-C: host->GPU {link / 1e9:g} GB/s for DGX {gpu} (from NVIDIA's {gpu} documents), the "
           "link the paper's switch comparison assumes")
    return _dgx(gpu, tflops, l2, bw, link, src, about=f"experts beyond HBM spill to host memory, loaded at "
                                                      f"{link / 1e9:g} GB/s as the SN40L paper assumes")


def loading_preset(loader: str, medium: str) -> str:
    """The DGX H100 preset whose experts load from `medium` with `loader` (see loading.py)."""
    return f"dgx-h100-{medium}" + ("-naive" if loader == "naive" else "")


def _dgx_h100_loading(loader: str, medium: str) -> Machine:
    path = load_path(loader, medium)
    suffix = loading_preset(loader, medium)[len("dgx-h100"):]
    if medium == "nvme":
        home = {"value": ref.DGX_H100_NVME_BYTES, "kind": "assumption",
                "source": "8 x 3.84 TB NVMe U.2 data drives as NVIDIA lists for the DGX H100 (not re-checked against "
                          "a stored copy of the datasheet)"}
        tier = "NVMe"
    else:
        home, tier = None, "host"
    about = f"experts load from {MEDIUM_NAMES[medium]} with {LOADER_NAMES[loader]}"
    return _dgx("H100", 989, 50e6, 3.35e12, path.rate, path.source, "calibrated", suffix, tier, home, about)


PRESETS = {
    "sn40l-8": lambda: _sn40l(1),
    "sn40l-16": lambda: _sn40l(2),
    "dgx-h100": lambda: _dgx_paper("H100", 989, 50e6, 3.35e12, ref.DGX_H100_HOST_LINK),
    "dgx-a100": lambda: _dgx_paper("A100", 312, 40e6, 2.039e12, ref.DGX_A100_HOST_LINK),
    "dgx-h100-nvme": lambda: _dgx_h100_loading("optimised", "nvme"),
    "dgx-h100-nvme-naive": lambda: _dgx_h100_loading("naive", "nvme"),
    "dgx-h100-dram": lambda: _dgx_h100_loading("optimised", "dram"),
    "dgx-h100-dram-naive": lambda: _dgx_h100_loading("naive", "dram"),
}


@lru_cache(maxsize=None)
def _preset(name: str) -> Machine:
    return PRESETS[name]()


def get_machine(name: str, **values: float) -> Machine:
    """A preset by name, optionally with knobs turned (e.g. get_machine('sn40l-8', hbm_bw=2.0e12))."""
    try:
        machine = _preset(name)
    except KeyError:
        raise ConfigError(f"unknown machine preset {name!r}; presets: {', '.join(PRESETS)}") from None
    return machine.with_values(**values) if values else machine
