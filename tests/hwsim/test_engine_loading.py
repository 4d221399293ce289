"""GPU model loading: one calibrated rate per loader x medium, every other published load a prediction."""
import pytest

from hwsim.engine import ExpertSpec, SimConfig, Workload, get_machine, load_path, loading_preset, simulate
from hwsim.engine import references as ref
from hwsim.engine.loading import LOADERS, MEDIA, calibration_model, predictions


def test_each_loader_and_medium_is_calibrated_on_its_smallest_published_model():
    assert calibration_model("optimised", "nvme") == "Llama-3.1-8B-Instruct"
    assert calibration_model("naive", "nvme") == "Llama-3.1-8B-Instruct"
    assert calibration_model("optimised", "dram") == "Qwen3-32B"  # a tie on size: the first listed
    path = load_path("naive", "nvme")
    assert path.rate == pytest.approx(8.03e9 * 2 / 4.437)
    assert path.load_seconds(2 * 8.03e9 * 2) == pytest.approx(2 * 4.437)  # linear in bytes


def test_predictions_cover_every_other_published_load_exactly_once():
    rows = predictions()
    calibrated = {(lo, me, load_path(lo, me).model) for lo in LOADERS for me in MEDIA}
    assert {(lo, me, m) for lo, me, m, *_ in rows} == set(ref.SLLM_LOADS) - calibrated
    for loader, medium, model, params, published, predicted in rows:
        assert predicted == pytest.approx(params * 2 / load_path(loader, medium).rate)
        assert published == ref.SLLM_LOADS[(loader, medium, model)]


def test_the_optimised_loader_is_faster_on_both_media_and_nvme_is_slower_than_dram():
    for medium in MEDIA:
        assert load_path("optimised", medium).rate > 4 * load_path("naive", medium).rate
    for loader in LOADERS:
        assert load_path(loader, "nvme").rate < load_path(loader, "dram").rate


def test_a_switch_on_a_media_preset_is_the_loading_model():
    spec = ExpertSpec("Qwen3-32B", ref.QWEN3_32B_PARAMS)
    machine = get_machine(loading_preset("optimised", "nvme"))
    res = simulate(SimConfig(machine, [spec]), Workload([0.0], [spec.name], [1], [1]))
    assert res.switches()[0]["duration_ms"] / 1e3 == pytest.approx(load_path("optimised", "nvme").load_seconds(
        spec.weight_bytes))


def test_unknown_loader_or_medium_is_refused():
    with pytest.raises(ValueError, match="loader must be"):
        load_path("turbo", "nvme")
