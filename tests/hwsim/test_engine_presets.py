"""Presets carry published values with provenance, calibrations say what they were fitted to, and user
machines are validated."""
import json

import pytest

from hwsim.engine import PRESETS, ConfigError, get_machine, load_path, loading_preset, machine_from_dict
from hwsim.engine.presets import KINDS, SPEC, GiB, MiB, TiB, sn40l_link_calibration


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_parameter_has_unit_source_and_kind(name):
    rows = get_machine(name).provenance()
    assert [r["name"] for r in rows] == list(SPEC)
    for r in rows:
        assert r["kind"] in KINDS and r["kind"] != "user" and r["source"] and r["unit"] and r["value"] >= 0
        assert r["source"] != "set below"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_calibrates_its_pass_overhead_on_a_named_measurement(name):
    p = get_machine(name).params["step_overhead"]
    assert p.kind == "calibrated" and p.value > 0
    assert ("Argonne" in p.source) if name != "sn40l-16" else ("Table IV" in p.source)


def test_media_presets_load_at_their_calibrated_rate():
    for loader in ("naive", "optimised"):
        for medium in ("nvme", "dram"):
            m = get_machine(loading_preset(loader, medium))
            assert m.v("link_bw") == pytest.approx(load_path(loader, medium).rate)
            assert m.params["link_bw"].kind == "calibrated" and "ServerlessLLM" in m.params["link_bw"].source
            assert m.home_tier == ("NVMe" if medium == "nvme" else "host")
    assert get_machine("dgx-h100-nvme").v("link_bw") < 29.4e9  # no faster than the SSD it reads


def test_machines_stored_before_the_pass_costs_existed_still_build():
    old = get_machine("dgx-h100").to_dict()
    for key in ("step_overhead", "allreduce_s"):
        del old["params"][key]
    m = machine_from_dict(old)
    assert m.v("step_overhead") == m.v("allreduce_s") == 0 and m.params["step_overhead"].kind == "user"


def test_sn40l_published_values():
    m = get_machine("sn40l-8")
    assert m.v("peak_flops") == 638e12 and m.v("sram_bytes") == 520 * MiB and m.v("hbm_bytes") == 64 * GiB
    assert m.home_total == 8 * 1.5 * TiB and m.sockets == 8 and m.home_tier == "DDR"
    assert get_machine("sn40l-16").sockets == 16 and get_machine("sn40l-16").link_total == 2 * m.link_total
    assert 1.6e12 <= m.v("hbm_bw") <= 2.0e12


def test_dgx_published_values():
    h, a = get_machine("dgx-h100"), get_machine("dgx-a100")
    assert (h.v("peak_flops"), h.v("hbm_bytes"), h.v("hbm_bw"), h.v("link_bw")) == (989e12, 80e9, 3.35e12, 64e9)
    assert (a.v("peak_flops"), a.v("link_bw")) == (312e12, 32e9) and h.home_tier == a.home_tier == "host"


def test_link_calibration_is_recorded_as_calibrated_and_above_published_floor():
    link, overhead = sn40l_link_calibration()
    m = get_machine("sn40l-8")
    assert m.params["link_bw"].kind == m.params["switch_overhead"].kind == "calibrated"
    assert m.v("link_bw") == link and link > 1e12 and 0 < overhead < 13.5e-3


def test_hbm_bandwidth_knob_is_recorded_as_user_value():
    m = get_machine("sn40l-8", hbm_bw=2.0e12)
    assert m.v("hbm_bw") == 2.0e12 and m.params["hbm_bw"].kind == "user"
    assert m.params["peak_flops"].kind == "published"


def test_round_trip_through_json():
    m = get_machine("dgx-h100")
    again = machine_from_dict(json.loads(json.dumps(m.to_dict())))
    assert again.provenance() == m.provenance() and again.name == m.name


def test_user_machine_from_flat_dict_and_base():
    flat = {k: 1.0 for k in SPEC} | {"name": "toy", "switch_overhead": 0.0}
    m = machine_from_dict(flat)
    assert m.params["hbm_bw"].kind == "user" and m.home_tier == "DDR"
    based = machine_from_dict({"base": "sn40l-8", "hbm_bytes": 96 * GiB})
    assert based.v("hbm_bytes") == 96 * GiB and based.v("peak_flops") == 638e12


@pytest.mark.parametrize("data, message", [
    ({"name": "x"}, "missing parameters"),
    ({"base": "sn40l-8", "hbm_bw": -1}, "must be > 0"),
    ({"base": "sn40l-8", "memory_eff": 1.5}, "<= 1"),
    ({"base": "sn40l-8", "sockets_per_node": 2.5}, "whole number"),
    ({"base": "sn40l-8", "warp_drive": 1}, "unknown machine fields"),
    ({"base": "sn40l-8", "hbm_bw": "fast"}, "must be a number"),
    ({"base": "sn40l-8", "hbm_bw": {"value": 1e12, "unit": "GB/s"}}, "must be given in B/s"),
    ({"base": "tpu-v9"}, "unknown machine preset"),
    ({"base": "sn40l-8", "home_tier": "tape"}, "home_tier"),
    ({"base": "sn40l-8", "step_overhead": -1e-3}, "must be >= 0"),
])
def test_bad_machines_give_clear_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        machine_from_dict(data)
