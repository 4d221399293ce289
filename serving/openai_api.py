"""The OpenAI-compatible endpoint: ``POST /v1/chat/completions`` (streaming or not) and ``GET /v1/models``.

Async views, so one web process holds many slow streams without a thread each; database work (routing, recording)
runs in worker threads. Auth is every API's (access.api): ``Authorization: Bearer <token>`` (scripts, the ``openai``
client) or the session with an ``X-CSRFToken`` header (the app's own pages). Each user has a per-minute request
limit.
"""
import asyncio
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from access.api import ApiError, authenticate
from access.roles import can_operate

from experts import backend_registry
from experts.backends import BackendError
from experts.backends.base import estimated_usage, prompt_tokens
from experts.backends.dispatch import AllExpertsFailed, complete_first, open_stream
from experts.selectors import experts as all_experts

from . import answering, ratelimit
from .openai_format import ChatError, chunk, coe_headers, completion, parse_chat_request, sse

_background = set()  # recording tasks started after a client went away: keep them referenced until done


def _db(fn):
    """``fn`` as a coroutine run on the event loop's thread pool. Django's default (thread-sensitive) would start a
    thread per request; pool threads keep their database connection. Before each use a connection that had an
    error (e.g. the database restarted) or outlived ``CONN_MAX_AGE`` is checked and replaced, as Django does per
    request — without Django's per-request ping of healthy connections, a round trip on every call."""
    def call(*args, **kwargs):
        for conn in connections.all(initialized_only=True):
            if conn.errors_occurred or (conn.close_at is not None and time.monotonic() >= conn.close_at):
                conn.close_if_unusable_or_obsolete()
        return fn(*args, **kwargs)
    return sync_to_async(call, thread_sensitive=False)


def _authenticate(request):
    """The request's user, by access.api's rules (a token needs the ``chat`` scope); refusals in OpenAI's format."""
    try:
        authenticate(request, "chat")
    except ApiError as exc:
        if exc.status == 401:
            raise ChatError(401, exc.message, type="authentication_error", code="invalid_api_key") from None
        raise ChatError(exc.status, exc.message, type="permission_error") from None
    return request.user


def _guard(request, method, *, budget=None):
    """Method, credentials and the rate limits (sync, inside the request's database hop); the user.

    Every authenticated request counts against the per-minute request limit, refused ones too. ``budget``: what a
    chat asks of the per-minute token budget, ``budget(user)`` → tokens, or raises ChatError (403, 400) after the
    request was counted; both limits are counted in one round trip. Refusals come in this order: 405, 401/403
    (credentials), 429 (requests), the chat's own 403/400, 429 (tokens)."""
    if request.method != method:
        raise ChatError(405, f"Method {request.method} not allowed; use {method}.")
    user = _authenticate(request)
    cost = refused = None
    if budget is not None:
        try:
            cost = budget(user)
        except ChatError as exc:
            refused = exc
    limits = [(f"user:{user.pk}", settings.COE_RATE_LIMIT_PER_MIN, 1)]
    if cost is not None:
        limits.append((f"tokens:{user.pk}", settings.COE_TOKENS_PER_MIN, cost))
    waits = ratelimit.check(limits)
    if waits[0]:
        raise ChatError(429, f"Rate limit of {settings.COE_RATE_LIMIT_PER_MIN} requests per minute reached "
                             f"(COE_RATE_LIMIT_PER_MIN); retry in {waits[0]} s.", type="rate_limit_error",
                        code="rate_limit_exceeded", headers={"Retry-After": str(waits[0])})
    if refused is not None:
        raise refused
    if cost is not None and waits[1]:
        raise ChatError(429, f"Token budget of {settings.COE_TOKENS_PER_MIN} per minute reached (COE_TOKENS_PER_MIN); "
                             f"retry in {waits[1]} s.", type="rate_limit_error", code="rate_limit_exceeded",
                        headers={"Retry-After": str(waits[1])})
    return user


def _begin_models(request):
    _guard(request, "GET")
    return all_experts()


def _token_cost(chat):
    """The tokens a chat asks for (its prompt, estimated, and max_tokens or the normal answer length), charged to the
    user's per-minute budget: one caller cannot keep every expert busy with enormous answers."""
    limit = settings.COE_TOKENS_PER_MIN
    cost = prompt_tokens(chat.messages) + chat.options.get("max_tokens", settings.COE_BREAKER_NORMAL_MAX_TOKENS)
    if limit > 0 and cost > limit:
        raise ChatError(400, f"This request asks for about {cost} tokens; the per-minute budget is {limit} "
                             f"(COE_TOKENS_PER_MIN).", param="max_tokens")
    return cost


def _begin_chat(request, source):
    """Everything before an expert is called, in one thread hop: auth, rate limits, parsing, routing, candidates."""
    start = time.perf_counter()
    parsed = []

    def budget(user):
        if not can_operate(user):
            raise ChatError(403, "You need the operator role (access.operate) to chat with the experts.",
                            type="permission_error")
        parsed.append(parse_chat_request(request.body, settings.COE_CHAT_MAX_BYTES,
                                         settings.COE_MAX_TOKENS_PER_REQUEST))
        return _token_cost(parsed[0])

    user = _guard(request, "POST", budget=budget)
    checked = time.perf_counter()
    chat = parsed[0]
    plan = answering.plan(chat.model, chat.messages, source, user)
    plan.timings["auth_limits"] = (checked - start) * 1000
    if chat.stream and plan.decision is not None:  # its first chunk names the decision: stored now, its call last
        answering.store_decision(plan)
    return user, chat, plan


@csrf_exempt
async def models_view(request):
    try:
        experts = await _db(_begin_models)(request)
    except ChatError as exc:
        return exc.response()
    data = [{"id": answering.COE_MODEL, "object": "model", "created": 0, "owned_by": "coe",
             "coe": {"routed": True, "description": "routed by category to the mapped expert"}}]
    data += [{"id": e.name, "object": "model", "created": 0, "owned_by": "coe",
              "coe": {"routed": False, "model_id": e.model_id, "backend": e.backend,
                      "simulated": e.simulated, "parameters": e.parameters}}
             for e in experts if e.enabled]
    return JsonResponse({"object": "list", "data": data})


@csrf_exempt
async def chat_completions_view(request):
    source = "page" if "Authorization" not in request.headers else "api"
    t0 = time.perf_counter()
    try:
        user, chat, plan = await _db(_begin_chat)(request, source)
    except ChatError as exc:
        return exc.response()
    t1 = time.perf_counter()
    record = _db(answering.record)
    try:
        if chat.stream:
            opened = await open_stream(plan.candidates, chat.messages, breakers=backend_registry.breakers(),
                                       **chat.options)
        else:  # ask upstreams for whole answers too: no stream to parse, and a failure at any point can fall back
            opened, answer = await complete_first(plan.candidates, chat.messages,
                                                  breakers=backend_registry.breakers(), **chat.options)
    except AllExpertsFailed as exc:
        await record(plan, source=source, user=user, stream=chat.stream, status="error", error=exc.message,
                     attempts=exc.attempts, fallback_reason=exc.attempts[0].error_kind if exc.attempts else "")
        return ChatError(503, f"No expert could answer: {exc.message}", type="api_error",
                         code="experts_unavailable").response()
    except asyncio.CancelledError:  # the client went away before any answer: the decision and the call are kept
        _keep(record(plan, source=source, user=user, stream=chat.stream, status="aborted",
                     error="the client went away before the answer", total_ms=_ms(plan)))
        raise
    status = "fallback" if opened.expert != plan.primary.name else "ok"
    done = dict(source=source, user=user, stream=chat.stream, answered_by=opened.expert,
                fallback_reason=opened.fallback_reason, attempts=opened.attempts,
                ttft_ms=opened.ttft_ms if chat.stream else None)  # a whole answer has no first-token time
    if not chat.stream:  # Backend.complete always fills finish_reason and usage
        t2 = time.perf_counter()
        await record(plan, **done, status=status, text=answer.text, usage=answer.usage, total_ms=_ms(plan))
        coe = plan.coe(opened.expert, opened.fallback_reason)
        response = JsonResponse(completion(plan.completion_id, chat.model, answer.text, answer.finish_reason,
                                           answer.usage, coe))
        response["Server-Timing"] = _server_timing(plan, t0, t1, t2, time.perf_counter())
    else:
        coe = plan.coe(opened.expert, opened.fallback_reason)
        response = StreamingHttpResponse(_events(plan, chat, opened, coe, status, done, record),
                                         content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
    for name, value in coe_headers(coe).items():
        response[name] = value
    return response


def _server_timing(plan, t0, t1, t2, t3):
    """Where a whole answer's time went (ms): the first thread hop (``prepare``: credentials and limits, the version
    query, the router, the experts' rows, and the hop itself), the expert, and the record (one transaction)."""
    steps = [("prepare", (t1 - t0) * 1e3), *plan.timings.items(), ("expert", (t2 - t1) * 1e3),
             ("record", (t3 - t2) * 1e3)]
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in steps)


def _keep(coroutine):
    """Run ``coroutine`` to its end even though the request that started it is being cancelled."""
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _events(plan, chat, opened, coe, status, done, record):
    """SSE chunks in OpenAI's format. The call is recorded before the last message (so a client that has read the
    whole stream finds it stored), or from a task of its own when the client goes away mid-answer."""
    created, cid, model = int(time.time()), plan.completion_id, chat.model
    parts, last, error, tail = [opened.first.text], opened.first, "", b"data: [DONE]\n\n"

    def save():
        text = "".join(parts)
        return record(plan, **done, status=status, error=error, text=text,
                      usage=last.usage or estimated_usage(chat.messages, text), total_ms=_ms(plan))

    try:
        yield sse(chunk(cid, model, created, role="assistant", content=opened.first.text, coe=coe))
        async for delta in opened.rest:
            last = delta
            if delta.text:
                parts.append(delta.text)
                yield sse(chunk(cid, model, created, content=delta.text))
        yield sse(chunk(cid, model, created, finish_reason=last.finish_reason or "stop"))
        if chat.include_usage:
            yield sse(chunk(cid, model, created, usage=last.usage or estimated_usage(chat.messages, "".join(parts)),
                            choices=False))
    except BackendError as exc:
        status, error = "error", f"failed mid-answer: {exc.message}"
        tail = sse({"error": {"message": f"Expert {opened.expert} failed mid-answer: {exc.message}",
                              "type": "api_error", "param": None, "code": "expert_failed"}})
    except (asyncio.CancelledError, GeneratorExit):
        status, error = "aborted", "the client went away mid-answer"
        await opened.rest.aclose()
        _keep(save())
        raise
    await save()
    yield tail


def _ms(plan):
    return (time.perf_counter() - plan.started) * 1000

