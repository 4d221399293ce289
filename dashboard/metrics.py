"""Prometheus metrics, computed when scraped.

Counters and histograms come from the database (decisions, expert calls), so every web process reports the same
totals whichever one Prometheus scrapes, work done by Celery workers included, and a restart resets nothing. Gauges
read the present: batch backlog (database), breaker states (the shared cache, merged over processes), the Celery
queues (the broker), and this process's websocket clients (scrape each web process for those).
"""
from django.conf import settings
from django.db.models import Count, Q, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from coe_site import fanout
from coe_site.errors import OUTAGE
from experts.backend_registry import merged_breakers
from routing import selectors as routing_reads
from serving import selectors as serving_reads

ROUTER_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 250, 500, 1000)
TTFT_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
BREAKER_STATES = ("closed", "half_open", "open", "unknown")


def _histogram(name, doc, rows, buckets, labels=()):
    """A histogram family from rows of {label values…, "le_<b>": count ≤ b, "n": count, "total": sum}."""
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    for row in rows:
        cumulative = [(str(b), row[f"le_{b}"]) for b in buckets] + [("+Inf", row["n"])]
        family.add_metric([row[label] or "" for label in labels], cumulative, row["total"] or 0.0)
    return family


def _buckets(field, buckets):
    return {f"le_{b}": Count("id", filter=Q(**{f"{field}__lte": b})) for b in buckets}


def _queue_depths():
    """{queue: messages waiting} for the queues this deployment uses (distributed mode), else {}."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {}
    from celery import current_app

    names = sorted({"celery", settings.COE_BATCH_QUEUE, settings.HWSIM_CELERY_QUEUE or "celery"})
    depths = {}
    with current_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        channel = conn.default_channel
        for name in names:
            try:
                depths[name] = channel.queue_declare(name, passive=True).message_count
            except Exception:  # a queue nothing has used yet does not exist: nothing waits in it
                depths[name] = 0
                channel = conn.channel()
    return depths


class CoeCollector:
    def collect(self):
        decisions = CounterMetricFamily("coe_decisions", "Routing decisions, by category used and chosen expert",
                                        labels=["category", "expert"])
        for row in routing_reads.decisions().values("category", "expert__name").annotate(n=Count("id")).order_by():
            decisions.add_metric([row["category"], row["expert__name"] or ""], row["n"])
        yield decisions
        fallbacks = CounterMetricFamily("coe_fallbacks", "Decisions sent to the fallback category, by reason",
                                        labels=["reason"])
        for row in (routing_reads.decisions().filter(fallback=True).values("fallback_reason")
                    .annotate(n=Count("id")).order_by()):
            fallbacks.add_metric([row["fallback_reason"] or "unknown"], row["n"])
        yield fallbacks
        router = routing_reads.decisions().aggregate(n=Count("id"), total=Sum("latency_ms"),
                                                     **_buckets("latency_ms", ROUTER_BUCKETS_MS))
        yield _histogram("coe_router_latency_ms", "Router time per prompt (milliseconds)", [router],
                         ROUTER_BUCKETS_MS)
        calls = CounterMetricFamily("coe_expert_calls", "Expert calls by the expert asked and outcome "
                                    "(ok, fallback, error, aborted)", labels=["expert", "status"])
        for row in serving_reads.expert_calls().values("primary__name", "status").annotate(n=Count("id")).order_by():
            calls.add_metric([row["primary__name"] or "", row["status"]], row["n"])
        yield calls
        ttft = (serving_reads.expert_calls().exclude(ttft_ms=None).values("expert__name")
                .annotate(n=Count("id"), total=Sum("ttft_ms"), **_buckets("ttft_ms", TTFT_BUCKETS_MS)).order_by())
        yield _histogram("coe_expert_ttft_ms", "Time to first token of streamed answers, by answering expert "
                         "(milliseconds)", ttft, TTFT_BUCKETS_MS, labels=("expert__name",))
        backlog = routing_reads.open_batches().aggregate(total=Sum("total"), done=Sum("done"))
        yield GaugeMetricFamily("coe_batch_backlog_prompts", "Prompts of unfinished batches not yet routed",
                                value=(backlog["total"] or 0) - (backlog["done"] or 0))
        batches = GaugeMetricFamily("coe_batches", "Batches by status", labels=["status"])
        counts = dict(routing_reads.batches().values_list("status").annotate(n=Count("id")).order_by())
        for status, _ in routing_reads.BATCH_STATUSES:
            batches.add_metric([status], counts.get(status, 0))
        yield batches
        yield self._breakers()
        yield GaugeMetricFamily("coe_websocket_clients", "Websocket clients of this web process",
                                value=fanout.socket_count())
        yield from self._queues()

    @staticmethod
    def _breakers():
        family = GaugeMetricFamily("coe_breaker_state", "Circuit breaker state per expert (1 for the current state; "
                                   "merged over processes; unknown while the shared cache is down)",
                                   labels=["expert", "state"])
        try:
            merged = {name: b["state"] for name, b in merged_breakers().items()}
        except OUTAGE:
            merged = {name: "unknown" for name in serving_reads.expert_calls().values_list("primary__name", flat=True)
                      .distinct() if name}
        for name, current in sorted(merged.items()):
            for state in BREAKER_STATES:
                family.add_metric([name, state], 1.0 if state == current else 0.0)
        return family

    @staticmethod
    def _queues():
        family = GaugeMetricFamily("coe_celery_queue_messages", "Messages waiting in each Celery queue",
                                   labels=["queue"])
        up = GaugeMetricFamily("coe_broker_up", "Whether the broker answered this scrape (1) or not (0)")
        try:
            for name, depth in _queue_depths().items():
                family.add_metric([name], depth)
            up.add_metric([], 1.0)
        except Exception:  # the broker is down: say so, and keep the rest of the scrape
            up.add_metric([], 0.0)
        yield family
        yield up
