"""Operators' signals: /healthz and /readyz for load balancers (no data, no authentication), /metrics for Prometheus
(token or allowed network), scraped with the official prometheus_client parser."""
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from routing.services import route_prompts
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_healthz_and_readyz_answer_without_credentials_or_details():
    client = Client()
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "alive"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert set(r.json()["checks"].values()) == {"ok"} and "database" in r.json()["checks"]
    assert "127.0.0.1" not in r.content.decode() and "postgres" not in r.content.decode()


def test_readyz_is_503_when_a_service_is_down(tmp_path, settings):
    from tests.realtime_servers import RedisServer

    redis = RedisServer(tmp_path).start()
    settings.REDIS_URL = redis.url
    try:
        assert Client().get("/readyz").status_code == 200
        redis.stop()
        r = Client().get("/readyz")
        assert r.status_code == 503 and r["Retry-After"] and r.json()["checks"]["redis"] == "unreachable"
        assert redis.url not in r.content.decode()
    finally:
        redis.stop()


def test_metrics_need_the_token_or_an_allowed_network(settings):
    settings.COE_METRICS_TOKEN = "s3cret-metrics"
    settings.COE_METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics").status_code == 403
    assert Client(headers={"Authorization": "Bearer wrong"}).get("/metrics").status_code == 403
    assert Client(headers={"Authorization": "Bearer s3cret-metrics"}).get("/metrics").status_code == 200
    settings.COE_METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 403


def test_metrics_count_what_happened(active_router, settings):
    from experts.models import Expert
    from serving.models import ExpertCall
    from routing.engine.inputs import Item
    from routing.services import create_batch

    settings.COE_METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    user = make_user("ops", "Operators")
    routed = route_prompts(prompts=["Solve 2x + 3 = 11 for x.", "Write a sonnet about rain.", "Integrate x^2 dx."],
                           source="api", user=user)
    expert = Expert.objects.get(name=routed[0]["expert"])
    ExpertCall.objects.create(requested_model="coe", primary=expert, expert=expert, status="ok", ttft_ms=120.0)
    ExpertCall.objects.create(requested_model="coe", primary=expert, status="error")
    # queued: its wake-ups never commit in this test
    create_batch(items=[Item(1, "a"), Item(2, "b")], name="backlog", user=user)
    text = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    f = families(text)
    decisions = {(s.labels["category"], s.labels["expert"]): s.value for s in f["coe_decisions"].samples
                 if s.name == "coe_decisions_total"}
    expected = {}
    for d in routed:
        expected[(d["category"], d["expert"])] = expected.get((d["category"], d["expert"]), 0) + 1
    assert decisions == expected
    router = {s.labels.get("le"): s.value for s in f["coe_router_latency_ms"].samples
              if s.name == "coe_router_latency_ms_bucket"}
    assert router["+Inf"] == 3 and all(router[a] <= router[b] for a, b in zip(list(router)[:-1], list(router)[1:]))
    calls = {(s.labels["expert"], s.labels["status"]): s.value for s in f["coe_expert_calls"].samples
             if s.name == "coe_expert_calls_total"}
    assert calls == {(expert.name, "ok"): 1, (expert.name, "error"): 1}
    ttft = {s.labels["le"]: s.value for s in f["coe_expert_ttft_ms"].samples if s.name.endswith("_bucket")}
    assert ttft["100"] == 0 and ttft["250"] == 1 and ttft["+Inf"] == 1
    assert f["coe_batch_backlog_prompts"].samples[0].value == 2
    assert {s.labels["status"]: s.value for s in f["coe_batches"].samples}["queued"] == 1
    assert f["coe_websocket_clients"].samples[0].value == 0
    breakers = [s for s in f["coe_breaker_state"].samples if s.value == 1]
    assert all(s.labels["state"] in ("closed", "half_open", "open", "unknown") for s in breakers)


def test_json_logs(tmp_path):
    import json
    import os
    import subprocess
    import sys

    code = ("import django, logging; django.setup(); log = logging.getLogger('coe.test'); log.warning('hello %s', 'x')\n"
            "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('boom')")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={
        **env, "COE_LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "coe_site.settings", "COE_VAR_DIR": str(tmp_path)})
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [(e["level"], e["logger"], e["message"]) for e in lines] == [("WARNING", "coe.test", "hello x"),
                                                                         ("ERROR", "coe.test", "boom")]
    assert "ZeroDivisionError" in lines[1]["exception"] and lines[0]["time"].endswith("+00:00")


def test_the_example_grafana_dashboard_uses_only_metrics_we_export(settings):
    import json
    import re
    from pathlib import Path

    settings.COE_METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    exported = set(families(Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()))
    dashboard = json.loads((Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json").read_text())
    used = {re.sub(r"_(total|bucket|sum|count)$", "", name) for p in dashboard["panels"] for t in p["targets"]
            for name in re.findall(r"coe_[a-z_]+", t["expr"])}
    assert used and used <= exported, used - exported
