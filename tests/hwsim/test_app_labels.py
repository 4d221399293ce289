"""The run and live-twin pages say that their figures are predictions and which machine inputs were calibrated
(and on what); the run form offers the loading-media presets."""
import pytest
from django.urls import reverse

from hwsim import services

from .inline_jobs import inline_jobs  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_run_page_labels_predictions_and_lists_calibrated_inputs(staff_client, inline_jobs,
                                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.create_run(raw={"machine": {"preset": "dgx-h100-nvme"},
                                       "experts": {"source": "uniform", "count": 20, "params": 7e9},
                                       "workload": {"requests": 50}})
    page = staff_client.get(reverse("hwsim:run", args=[run.pk])).content.decode()
    assert 'id="summary-label">predicted<' in page and 'id="machine-inputs"' in page
    assert page.count('class="kind-calibrated">calibrated<') == 2  # link_bw (ServerlessLLM) and step_overhead
    assert "ServerlessLLM" in page and "Argonne" in page


def test_twin_page_labels_predictions_and_lists_its_machine_inputs(staff_client, inline_jobs,
                                                                   django_capture_on_commit_callbacks):
    page = staff_client.get(reverse("hwsim:twin")).content.decode()
    assert 'id="twin-note"' in page and 'id="machine-inputs"' not in page  # no twin yet, nothing to list
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("hwsim:twin-start"), {"machine": "sn40l-8", "policy": "lru", "batching": "coe",
                                                        "output_tokens": 16})
    page = staff_client.get(reverse("hwsim:twin")).content.decode()
    assert 'id="machine-inputs"' in page and "Table IV" not in page and "SambaFlow" in page


def test_run_form_offers_the_loading_media_presets(staff_client):
    page = staff_client.get(reverse("hwsim:index")).content.decode()
    for preset in ("dgx-h100-nvme", "dgx-h100-nvme-naive", "dgx-h100-dram", "dgx-h100-dram-naive"):
        assert f'value="{preset}"' in page
