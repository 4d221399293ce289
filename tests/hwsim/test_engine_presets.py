"""Presets carry the issue's published values with provenance; user machines are validated."""
import json

import pytest

from hwsim.engine import PRESETS, ConfigError, get_machine, machine_from_dict
from hwsim.engine.presets import SPEC, GiB, MiB, TiB, sn40l_link_calibration


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_parameter_has_unit_source_and_kind(name):
    rows = get_machine(name).provenance()
    assert [r["name"] for r in rows] == list(SPEC)
    for r in rows:
        assert r["kind"] in ("published", "derived") and r["source"] and r["unit"] and r["value"] >= 0


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


def test_link_calibration_is_derived_and_above_published_floor():
    link, overhead = sn40l_link_calibration()
    m = get_machine("sn40l-8")
    assert m.params["link_bw"].kind == m.params["switch_overhead"].kind == "derived"
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
])
def test_bad_machines_give_clear_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        machine_from_dict(data)
