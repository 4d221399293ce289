"""Machine descriptions with per-parameter provenance, the four presets, and user-defined machines.

Every number carries its unit, a citation and whether it was published or derived, because the
dashboard shows operators *why* the simulator believes a switch costs what it does.  Values are SI
(bytes, B/s, FLOP/s, seconds).  Compute and HBM are per socket; an expert is tensor-parallel across all
sockets of all nodes, so the cost model multiplies them out.  Home-tier capacity and the home->HBM link
are per node, because that is how both vendors publish them.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from types import MappingProxyType

from . import references as ref
from .errors import ConfigError

KiB, MiB, GiB, TiB = 2**10, 2**20, 2**30, 2**40
KINDS = ("published", "derived", "user")

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
}
HOME_TIERS = ("DDR", "host")


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
    if key == "switch_overhead":
        if value < 0:
            raise ConfigError("parameter 'switch_overhead' must be >= 0 s")
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

    switch = overhead + bytes / (nodes * link).  Table V gives 13.5 ms for Llama-2-7B on one 8-socket
    node; Hot Chips 2024 gives ~10 ms for Llama-3.1-8B on two nodes.  Two equations, two unknowns.
    """
    b1, n1, t1 = ref.LLAMA2_7B_PARAMS * ref.BF16_BYTES, 1, ref.SN40L8_SWITCH_7B_MS / 1e3
    b2, n2, t2 = ref.LLAMA31_8B_PARAMS * ref.BF16_BYTES, 2, ref.SN40L16_SWITCH_8B_MS / 1e3
    link = (b1 / n1 - b2 / n2) / (t1 - t2)
    return link, t1 - b1 / (n1 * link)


_SN40L = "SN40L paper (arXiv 2405.07518)"
_EFF = ("assumption: typical fraction of peak reached by tuned LLM kernels; a knob, not a measurement")


def _sn40l(nodes: int) -> Machine:
    link, overhead = sn40l_link_calibration()
    fit = ("solved with switch_overhead from SN40L paper Table V (Llama-2-7B, 13.5 ms, 8 sockets) and "
           "Hot Chips 2024 (Llama-3.1-8B, ~10 ms, 16 sockets), assuming the link scales with nodes")
    return machine_from_dict({
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
            "hbm_bw": {"value": 1.8e12, "kind": "derived",
                       "source": "midpoint of the 1.6-2.0 TB/s per-socket range quoted for SN40L HBM; a knob"},
            "home_bytes": {"value": 8 * 1.5 * TiB, "kind": "derived",
                           "source": f"8 sockets x 1.5 TiB DDR per socket ({_SN40L})"},
            "link_bw": {"value": link, "kind": "derived",
                        "source": fit + "; consistent with the paper's 'over 1 TB/s' DDR->HBM per node"},
            "switch_overhead": {"value": overhead, "kind": "derived", "source": fit},
            "compute_eff": {"value": 0.6, "kind": "derived", "source": _EFF},
            "memory_eff": {"value": 0.8, "kind": "derived", "source": _EFF},
        }})


def _dgx(gpu: str, tflops: float, l2: float, bw: float, link: float, link_src: str) -> Machine:
    sheet = f"NVIDIA {gpu} SXM datasheet"
    return machine_from_dict({
        "name": f"dgx-{gpu.lower()}", "home_tier": "host",
        "description": f"NVIDIA DGX {gpu}: 8 x {gpu} 80 GB; experts beyond HBM spill to host memory",
        "params": {
            "sockets_per_node": {"value": 8, "source": f"DGX {gpu}: 8 GPUs", "kind": "published"},
            "nodes": {"value": 1, "source": "preset choice", "kind": "derived"},
            "peak_flops": {"value": tflops * 1e12, "source": f"{sheet}: {tflops:g} dense BF16 TFLOPS",
                           "kind": "published"},
            "sram_bytes": {"value": l2, "source": f"{sheet}: {l2 / 1e6:g} MB L2 cache", "kind": "published"},
            "hbm_bytes": {"value": 80e9, "source": f"{sheet}: 80 GB HBM", "kind": "published"},
            "hbm_bw": {"value": bw, "source": f"{sheet}: {bw / 1e12:g} TB/s", "kind": "published"},
            "home_bytes": {"value": 2 * TiB, "kind": "published",
                           "source": f"DGX {gpu} user guide: 2 TB system memory (32 DIMMs of 64 GB, "
                                     "binary capacities, so 2 TiB)"},
            "link_bw": {"value": link, "source": link_src, "kind": "published"},
            "switch_overhead": {"value": 0.0, "kind": "derived",
                                "source": "assumed negligible next to a ~200-400 ms PCIe copy; Table V's "
                                          "ratios equal plain bandwidth ratios"},
            "compute_eff": {"value": 0.6, "kind": "derived", "source": _EFF},
            "memory_eff": {"value": 0.8, "kind": "derived", "source": _EFF},
        }})


PRESETS = {
    "sn40l-8": lambda: _sn40l(1),
    "sn40l-16": lambda: _sn40l(2),
    "dgx-h100": lambda: _dgx("H100", 989, 50e6, 3.35e12, 64e9,
                             f"{_SN40L}: host->GPU 64 GB/s assumed for DGX H100 (PCIe Gen5 x16)"),
    "dgx-a100": lambda: _dgx("A100", 312, 40e6, 2.039e12, 32e9,
                             f"{_SN40L}: host->GPU 32 GB/s assumed for DGX A100 (PCIe Gen4 x16)"),
}


def get_machine(name: str, **values: float) -> Machine:
    """A preset by name, optionally with knobs turned (e.g. get_machine('sn40l-8', hbm_bw=2.0e12))."""
    try:
        machine = PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown machine preset {name!r}; presets: {', '.join(PRESETS)}") from None
    return machine.with_values(**values) if values else machine
