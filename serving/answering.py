"""Answer a conversation with the experts: route it (model ``coe``) or take the named expert, call the backend with
retries, circuit breakers and fallback (experts/backends/dispatch.py), and record every call.

Which turn routes: the latest user message. When it is a terse follow-up (fewer than ``FOLLOW_UP_WORDS`` words) the
previous user message is put in front of it, so "and in Rust?" after a coding question still routes as coding.
System prompts and the assistant's own turns never route: they say how to answer, not what is asked.
"""
import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings
from django.db import transaction

from coe_site import realtime
from experts import backend_registry
from experts.backends import BackendError
from experts.backends.dispatch import AllExpertsFailed, complete_first
from experts.backends.openai_http import aclose_shared_client
from experts.selectors import Expert, current_map, expert_pool, experts_named
from experts.services import FALLBACK_CATEGORY
from routing.selectors import active_router, serving_heads
from routing.services import decide_prompts, record_answer, store_decisions

from .models import ExpertCall
from .openai_format import ChatError

FOLLOW_UP_WORDS = 8
COE_MODEL = "coe"
HEARTBEAT_S = 20.0


def routing_text(messages, max_bytes=None):
    """The text a conversation routes on (see the module docstring), cut to ``max_bytes`` of UTF-8 (the router reads
    only its first few hundred tokens anyway; the decision stores what was routed, never a whole long document)."""
    users = [m["content"] for m in messages if m["role"] == "user" and m["content"].strip()]
    text = users[-1]
    if len(text.split()) < FOLLOW_UP_WORDS and len(users) > 1:
        text = f"{users[-2]}\n{text}"
    if max_bytes is not None and len(text) * 4 > max_bytes:  # cheap test first: a char is at most 4 bytes
        text = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    return text


@dataclass
class Plan:
    """Who answers, decided before any expert is called (sync, in a worker thread)."""

    requested: str
    primary: Expert
    candidates: list  # [(expert name, Backend, or the BackendError that kept it from being built)] primary first
    experts: dict  # name → Expert
    # Model "coe": the routing decision, unsaved until the call is recorded (one transaction for both; a stream
    # stores it before its first chunk, which names it), and its public extras (expert, map and router versions).
    decision: object = None
    routed: dict | None = None
    started: float = field(default_factory=time.perf_counter)
    timings: dict = field(default_factory=dict)  # ms per step, for the Server-Timing header

    @cached_property
    def completion_id(self):  # one id per answer, even when asked for twice; a decision's once it is stored
        return f"chatcmpl-{self.decision.pk}" if self.decision else f"chatcmpl-{uuid.uuid4().hex[:24]}"

    def coe(self, answered_by, fallback_reason=""):
        expert = self.experts.get(answered_by, self.primary)
        d = self.decision
        return {"requested_model": self.requested, "expert": answered_by, "chosen_expert": self.primary.name,
                "category": d.category if d else None, "confidence": round(d.confidence, 5) if d else None,
                "routing_fallback_reason": d.fallback_reason if d else "", "decision_id": d.pk if d else None,
                "fallback_reason": fallback_reason, "simulated": expert.simulated,
                "backend": expert.backend}


def fallback_expert_name(snapshot):
    return settings.COE_FALLBACK_EXPERT or (snapshot.assignments.get(FALLBACK_CATEGORY) if snapshot else None)


def _candidates(requested, primary_name, snapshot, decision=None, routed=None, timings=None, cached=False):
    """The Plan for ``primary_name`` and the configured fallback. An expert the caller named (``requested`` is not
    ``coe``) must exist and be enabled; a routed one is used as the map says. ``cached``: the experts' rows from the
    process's cache (the endpoint; selectors.experts_named), else from the database."""
    start = time.perf_counter()
    names = [primary_name]
    fallback = fallback_expert_name(snapshot)
    if fallback and fallback != primary_name:
        names.append(fallback)
    experts = experts_named(names) if cached else {e.name: e for e in expert_pool().filter(name__in=names)}
    primary = experts.get(primary_name)
    if primary is None or (requested != COE_MODEL and not primary.enabled):
        raise ChatError(404, f"The model '{primary_name}' does not exist: use 'coe' or an enabled expert's name "
                             f"(GET /v1/models).", code="model_not_found", param="model")
    result = Plan(requested, primary, [], experts, decision, routed, timings=dict(timings or {}))
    for name in names:
        expert = experts.get(name)
        if expert is None or (name != primary_name and not expert.enabled):
            continue
        try:
            result.candidates.append((name, backend_registry.backend_for(expert)))
        except BackendError as exc:  # misconfigured: dispatch counts it as a failed attempt, the next one answers
            result.candidates.append((name, exc))
    result.timings["experts"] = _ms(start)
    return result


def plan(model, messages, source="api", user=None):
    """Route (for ``coe``) and pick the primary and fallback experts; raises ChatError for unknown models.
    ``source``: "api" or "page", as the routing decision records it; ``user`` owns the decision, which ``record``
    stores with the call (or ``store_decision``, for a stream). One query checks the router's and the map's versions."""
    start = time.perf_counter()
    if model != COE_MODEL:
        return _candidates(model, model, current_map(), timings={"versions": _ms(start)}, cached=True)
    router_head, map_head = serving_heads()
    router, snapshot = active_router(router_head), current_map(map_head) if map_head else None
    versions = time.perf_counter()
    decisions, extras = decide_prompts([routing_text(messages, settings.COE_ROUTE_MAX_BYTES)], source, user=user,
                                       router=router, snapshot=snapshot)
    return _candidates(model, extras[0]["expert"], snapshot, decisions[0], extras[0],
                       timings={"versions": _ms(start, versions), "route": _ms(versions)}, cached=True)


def store_decision(plan):
    """Store a plan's routing decision now (a stream names it in its first chunk)."""
    store_decisions(decisions=[plan.decision], extras=[plan.routed])


def _ms(start, end=None):
    return ((end or time.perf_counter()) - start) * 1000


def batch_answerer(heartbeat):
    """A ``route_prompts`` answer hook for batches run as "route and answer".

    Every prompt is asked of its chosen expert (fallback on failure), ``COE_BATCH_ANSWER_CONCURRENCY`` at a time,
    on an event loop in a helper thread; this thread renews the chunk's claim every ``HEARTBEAT_S`` meanwhile.
    Nothing is written until the routing transaction stores the decisions, so a worker dying mid-chunk leaves no
    half-answered chunk: the chunk is re-claimed and answered again.
    """
    def answer(prompts, expert_names):
        snapshot = current_map()
        plans = {name: _candidates(COE_MODEL, name, snapshot) for name in set(expert_names)}
        jobs = [(p, plans[name]) for p, name in zip(prompts, expert_names)]
        with ThreadPoolExecutor(1, thread_name_prefix="batch-answers") as pool:
            future = pool.submit(asyncio.run, _answer_all(jobs, settings.COE_BATCH_ANSWER_CONCURRENCY))
            while True:
                try:
                    results = future.result(timeout=HEARTBEAT_S)
                    break
                except FutureTimeout:
                    heartbeat()
        answers = [(r["plan"].experts[r["expert"]].pk if r["expert"] else None, r["fallback_reason"])
                   for r in results]

        def write(decisions):
            calls = ExpertCall.objects.bulk_create([
                ExpertCall(source="batch", decision_id=d.pk, requested_model=COE_MODEL, primary=r["plan"].primary,
                           expert=r["plan"].experts.get(r["expert"]), status=r["status"],
                           fallback_reason=r["fallback_reason"][:40], error=r["error"], attempts=r["attempts"],
                           simulated=r["simulated"], ttft_ms=r["ttft_ms"], total_ms=r["total_ms"],
                           prompt_tokens=r["usage"].get("prompt_tokens", 0),
                           completion_tokens=r["usage"].get("completion_tokens", 0), response=r["text"])
                for d, r in zip(decisions, results)])
            items = [call_item(c, r["expert"] or r["plan"].primary.name) for c, r in zip(calls, results)]
            transaction.on_commit(lambda: realtime.dashboard.add_calls(items, backend_registry.share_breakers()))

        return answers, write

    return answer


async def _answer_all(jobs, concurrency):
    gate = asyncio.Semaphore(max(1, concurrency))
    board = backend_registry.breakers()

    async def one(prompt, plan):
        messages = [{"role": "user", "content": prompt}]
        result = {"plan": plan, "expert": "", "fallback_reason": "", "error": "", "status": "error", "text": "",
                  "usage": {}, "ttft_ms": None, "total_ms": None, "simulated": False, "attempts": []}
        async with gate:
            start = time.perf_counter()
            try:
                opened, done = await complete_first(plan.candidates, messages, breakers=board)
            except AllExpertsFailed as exc:
                result.update(error=exc.message, attempts=[a.to_dict() for a in exc.attempts],
                              fallback_reason=exc.attempts[0].error_kind if exc.attempts else "")
            else:
                # a whole answer has no first-token time: ttft_ms stays None, as on the endpoint
                result.update(expert=opened.expert, fallback_reason=opened.fallback_reason, text=done.text,
                              usage=done.usage, simulated=plan.experts[opened.expert].simulated,
                              status="fallback" if opened.expert != plan.primary.name else "ok",
                              attempts=[a.to_dict() for a in opened.attempts])
            result["total_ms"] = (time.perf_counter() - start) * 1000
        return result

    try:
        return await asyncio.gather(*(one(p, plan) for p, plan in jobs))
    finally:
        await aclose_shared_client()


def record(plan, *, source, user=None, stream=False, answered_by="", fallback_reason="", status="ok", error="",
           attempts=(), text="", usage=None, ttft_ms=None, total_ms=None):
    """Store the call and, for a routed one, its decision with the answer noted on it — in one transaction, so one
    commit (one disk flush) makes both durable before the answer is sent — and tell the dashboard on commit."""
    expert = plan.experts.get(answered_by)
    usage = usage or {}
    calls = []

    def write_call(decisions=()):
        calls.append(ExpertCall.objects.create(
            source=source, user=user if getattr(user, "pk", None) else None,
            decision_id=plan.decision.pk if plan.decision else None, requested_model=plan.requested[:100],
            primary=plan.primary, expert=expert, status=status, fallback_reason=fallback_reason[:40],
            error=error, attempts=[a.to_dict() for a in attempts], stream=stream,
            simulated=bool(expert and expert.simulated), ttft_ms=ttft_ms, total_ms=total_ms,
            prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0),
            response=text))
        item = call_item(calls[0], answered_by or plan.primary.name)
        transaction.on_commit(lambda: realtime.dashboard.add_calls([item], backend_registry.share_breakers()))

    if plan.decision is None:
        write_call()  # one write: no transaction (two round trips fewer)
    elif plan.decision.pk is None:
        plan.decision.answered_by_id = expert.pk if expert else None
        plan.decision.answer_fallback_reason = fallback_reason[:40]
        store_decisions(decisions=[plan.decision], extras=[plan.routed], write_answers=write_call)
    else:  # a stream's decision, stored before its first chunk
        with transaction.atomic():
            write_call()
            record_answer(decision_id=plan.decision.pk, expert_id=expert.pk if expert else None,
                          reason=fallback_reason)
    return calls[0]


def call_item(call, expert_name):
    """The compact, JSON-safe shape of an expert call on the live dashboard."""
    return {"id": call.pk, "expert": expert_name, "primary": call.primary.name if call.primary else expert_name,
            "status": call.status, "fallback_reason": call.fallback_reason,
            "ttft_ms": call.ttft_ms, "total_ms": call.total_ms, "simulated": call.simulated,
            "tokens": call.completion_tokens, "t": time.time()}
