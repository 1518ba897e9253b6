"""An OpenAI-compatible HTTP server whose "model" is the grounded agent (`tooltoken serve`).

    >>> app = create_app(Agent(model="smollm2-135m", tools=default_tools()), api_key="s3cret")  # doctest: +SKIP
    >>> serve(app, host="127.0.0.1", port=8000)                                             # doctest: +SKIP

Endpoints: `GET /v1/models`, `GET /v1/models/{id}`, `POST /v1/chat/completions` (with
`"stream": true` as server-sent events, `stream_options.include_usage` honoured). Tool calls run
here, on the server's own tools; the client sees the answer. What the answer rests on comes back in
an extra top-level field, `tooltoken`, which OpenAI clients keep as an extra attribute
(`completion.model_extra["tooltoken"]` in the `openai` package):

    "tooltoken": {
      "stop_reason": "stop",            # the agent's own reason (see tooltoken.Final)
      "message": "",                    # why it stopped, in words, if not the model's choice
      "citations": [{"marker": 1, "verified": true, "tool": "calculator",
                     "arguments": {...}, "sources": [...], "reason": ""}],
      "tool_calls": [{"id", "name", "arguments", "raw"}],
      "tool_results": [{"id", "name", "content", "source", "error", "truncated", "duration_s", "sources"}],
      "usage": {...tooltoken.Usage...}, "timings": {...}
    }

In a stream, each tool call and its result arrive as a chunk with an empty delta and
`"tooltoken": {"event": "tool_call" | "tool_result", ...}`; the chunk with `finish_reason`
carries the whole object above.

Request fields read: `messages` (system, user, assistant and tool roles; text content, as a
string or text parts), `stream`, `stream_options`, `max_tokens` / `max_completion_tokens`
(clamped to `max_tokens_cap`), `stop`, `tool_choice` ("auto", "none", "required" or a named
server tool). Refused with 400: client-side `tools` (this server runs its own), `n` > 1, non-text
content. `model`, `temperature`, `seed` and other sampling fields are accepted and ignored: the
server answers with the one agent it was started with, as it was configured.

Limits: `api_key` (a bearer token; 401 without it), `max_body_bytes` (413), a per-client rate
limit in requests per minute keyed by the peer address (429 with Retry-After), and `max_queue`
requests admitted at once (503 above). Admitted requests wait their turn on the model: the
agent's lock serialises them, since one llama.cpp context is not thread-safe. Each request
browses on its own (`Agent.stream` gives each answer new Browser state over the shared index), so one client never
sees another's search results or open document. A client that disconnects mid-stream cancels
its answer.
"""

from __future__ import annotations

import hmac
import json
import math
import threading
import time
import uuid
from dataclasses import asdict
from typing import Any, AsyncIterator, Callable

from tooltoken._bridge import aiter_in_thread
from tooltoken._errors import ConfigError
from tooltoken._families import Call, Family


__all__ = ["RateLimiter", "RequestError", "StopFilter", "agent_messages", "create_app", "extra",
           "finish_reason", "serve"]

_ROLES = ("system", "user", "assistant", "tool")


class RequestError(Exception):
    def __init__(self, status: int, message: str, code: str = "invalid_request_error", param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.headers = status, message, code, param, headers or {}


# -- pure helpers (also used by the LangChain adapter) ------------------------------------------
def agent_messages(messages: Any, family: Family | None = None) -> list[dict]:
    """OpenAI chat messages -> the agent's [{'role', 'content'}] list.

    An assistant turn's `tool_calls` are written after its text in the family's canonical call
    form; a `tool` turn becomes a user turn holding the family's result text, as the loop writes
    results, so a conversation replayed from a client reads like one the agent had itself.
    `family`: the agent's (`Agent.fmt`); None: the Hermes family.
    """
    family = family or Family()
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list", param="messages")
    out: list[dict] = []
    results = 0
    names: dict[str, str] = {}  # tool_call_id -> tool name, for results that do not say
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise RequestError(400, f"messages[{i}]: role must be one of {', '.join(_ROLES)}", param="messages")
        role = m["role"]
        text = _text(m.get("content"), i)
        if role == "assistant":
            for call in m.get("tool_calls") or []:
                fn = call.get("function", {}) if isinstance(call, dict) else {}
                names[str(call.get("id"))] = fn.get("name", "")
                args = fn.get("arguments", "{}")
                try:
                    args = json.loads(args) if isinstance(args, str) else args
                except ValueError:
                    pass
                body = "".join(p.text for p in family.canonical([Call(fn.get("name", ""), args)], [str(call.get("id"))]))
                text += ("\n" if text else "") + family.call_open + body + family.call_close
            out.append({"role": "assistant", "content": text})
        elif role == "tool":
            results += 1
            name = m.get("name") or names.get(str(m.get("tool_call_id"))) or "tool"
            item = (f"[{results}] {name}", text, str(m.get("tool_call_id") or ""))
            out.append({"role": "user", "content": family.result_text([item])})
        else:
            out.append({"role": role, "content": text})
    return out


def _text(content: Any, i: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestError(400, f"messages[{i}]: content of type {kind!r} is not supported (text only)",
                                   param="messages")
        return "".join(parts)
    raise RequestError(400, f"messages[{i}]: content must be a string or a list of text parts", param="messages")


class StopFilter:
    """Cut a text stream at the first of some stop strings, holding back only what could be the
    start of one. `feed` returns the text that is safe to show; `hit` turns True at a stop.

        >>> f = StopFilter(["END"])
        >>> f.feed("hello E"), f.feed("ND more"), f.hit
        ('hello ', '', True)
    """

    def __init__(self, stops: list[str] | None) -> None:
        self.stops = [s for s in (stops or []) if s]
        self.pending = ""
        self.hit = False

    def feed(self, text: str) -> str:
        if self.hit:
            return ""
        if not self.stops:
            return text
        self.pending += text
        at = min((i for i in (self.pending.find(s) for s in self.stops) if i != -1), default=-1)
        if at != -1:
            self.hit = True
            out, self.pending = self.pending[:at], ""
            return out
        keep = 0  # the longest tail that is a prefix of a stop string
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(s[:n]):
                    keep = max(keep, n)
                    break
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep :]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.hit else self.pending), ""
        return out


def finish_reason(stop_reason: str) -> str:
    return "length" if stop_reason in ("length", "context") else "stop"


def extra(final: Any) -> dict[str, Any]:
    """The documented `tooltoken` field of a response."""
    return {
        "stop_reason": final.stop_reason,
        "message": final.message,
        "citations": [asdict(c) for c in final.citations],
        "tool_calls": [asdict(c) for c in final.tool_calls],
        "tool_results": [asdict(r) for r in final.tool_results],
        "usage": asdict(final.usage),
        "timings": final.timings,
    }


class RateLimiter:
    """A token bucket per client: `per_minute` requests a minute, bursts up to that many."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, per_minute)
        self.clock = clock
        self.max_clients = max_clients
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, time)
        self.lock = threading.Lock()

    def check(self, client: str) -> float:
        """0 if the request may go, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self.lock:
            tokens, then = self.buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self.buckets[client] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self.buckets[client] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if len(self.buckets) > self.max_clients:  # forget the full buckets: they behave as new
                for key in [k for k, (t, _) in self.buckets.items() if t >= self.burst - 1.0][: self.max_clients // 2]:
                    del self.buckets[key]
            return wait


# -- the app ------------------------------------------------------------------------------------
def create_app(
    agent: Any,
    *,
    served_model_name: str = "tooltoken",
    api_key: str | None = None,
    max_body_bytes: int = 1_000_000,
    max_tokens_cap: int = 1024,
    rate_limit: float = 60.0,
    max_queue: int = 16,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """A Starlette app serving `agent` (see the module docstring)."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response, StreamingResponse
        from starlette.routing import Route
    except ImportError:
        raise ConfigError("the server needs its extra: pip install 'tooltoken[server]'") from None

    created = int(time.time())
    limiter = RateLimiter(rate_limit, clock)
    state = {"admitted": 0}
    admit_lock = threading.Lock()

    def error(exc: RequestError) -> Response:
        body = {"error": {"message": exc.message, "type": _error_type(exc.status), "code": exc.code,
                          "param": exc.param}}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    def gate(request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        wait = limiter.check(client)
        if wait > 0:
            raise RequestError(429, f"rate limit: {rate_limit:g} requests per minute per client; retry in "
                               f"{wait:.1f} s", "rate_limit_exceeded", headers={"Retry-After": str(math.ceil(wait))})
        if api_key is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
                raise RequestError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                   "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    def model_card() -> dict[str, Any]:
        return {"id": served_model_name, "object": "model", "created": created, "owned_by": "tooltoken"}

    async def models(request: Request) -> Response:
        try:
            gate(request)
        except RequestError as exc:
            return error(exc)
        return JSONResponse({"object": "list", "data": [model_card()]})

    async def model(request: Request) -> Response:
        try:
            gate(request)
            if request.path_params["model"] != served_model_name:
                raise RequestError(404, f"model {request.path_params['model']!r} not found; this server serves "
                                   f"{served_model_name!r}", "model_not_found")
        except RequestError as exc:
            return error(exc)
        return JSONResponse(model_card())

    async def read_body(request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            raise RequestError(413, f"request body over {max_body_bytes} bytes", "request_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise RequestError(413, f"request body over {max_body_bytes} bytes", "request_too_large")
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except ValueError as exc:
            raise RequestError(400, f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the body must be a JSON object")
        return body

    def parse(body: dict[str, Any]) -> tuple[list[dict], dict[str, Any], list[str], bool, bool]:
        if body.get("tools") or body.get("functions"):
            raise RequestError(400, "client-side tools are not supported: this server runs its own tools "
                               f"({', '.join(t.name for t in agent.tools) or 'none'}) and returns the answer",
                               param="tools")
        if body.get("n", 1) != 1:
            raise RequestError(400, "only n=1 is supported", param="n")
        messages = agent_messages(body.get("messages"), agent.fmt)
        options: dict[str, Any] = {}
        requested = body.get("max_completion_tokens", body.get("max_tokens"))
        if requested is not None:
            if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
                raise RequestError(400, "max_tokens must be a positive integer", param="max_tokens")
            options["max_tokens"] = min(requested, max_tokens_cap)
        else:
            options["max_tokens"] = min(agent.options.max_tokens, max_tokens_cap)
        choice = body.get("tool_choice")
        if choice is not None:
            if isinstance(choice, dict):
                choice = (choice.get("function") or {}).get("name")
            names = [t.name for t in agent.tools]
            if choice not in ("auto", "none", "required", *names):
                raise RequestError(400, f"tool_choice must be auto, none, required or a server tool "
                                   f"({', '.join(names) or 'none'})", param="tool_choice")
            options["tool_choice"] = choice
        stop = body.get("stop")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if len(stops) > 4 or not all(isinstance(s, str) for s in stops):
            raise RequestError(400, "stop must be a string or a list of up to 4 strings", param="stop")
        stream = bool(body.get("stream", False))
        usage_in_stream = bool((body.get("stream_options") or {}).get("include_usage", False))
        return messages, options, stops, stream, usage_in_stream

    def admit() -> None:
        with admit_lock:
            if state["admitted"] >= max_queue:
                raise RequestError(503, f"server busy: {max_queue} requests already waiting for the model",
                                   "server_busy", headers={"Retry-After": "1"})
            state["admitted"] += 1

    def release() -> None:
        with admit_lock:
            state["admitted"] -= 1

    async def completions(request: Request) -> Response:
        try:
            gate(request)
            body = await read_body(request)
            messages, options, stops, stream, usage_in_stream = parse(body)
            admit()
        except RequestError as exc:
            return error(exc)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        if stream:
            gen = _stream(agent, messages, options, stops, usage_in_stream, rid, served_model_name, release)
            return StreamingResponse(gen, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        try:
            text, final = await _answer(agent, messages, options, stops)
        finally:
            release()
        usage = _usage(final)
        return JSONResponse({
            "id": rid, "object": "chat.completion", "created": int(time.time()), "model": served_model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish_reason(final.stop_reason),
                         "logprobs": None}],
            "usage": usage, "tooltoken": extra(final),
        })

    routes = [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model:path}", model, methods=["GET"]),
        Route("/v1/chat/completions", completions, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _error_type(status: int) -> str:
    return {401: "authentication_error", 404: "not_found_error", 413: "invalid_request_error",
            429: "rate_limit_error", 503: "server_error"}.get(status, "invalid_request_error")


def _usage(final: Any) -> dict[str, int]:
    return {"prompt_tokens": final.usage.prompt_tokens, "completion_tokens": final.usage.completion_tokens,
            "total_tokens": final.usage.prompt_tokens + final.usage.completion_tokens}


async def _events(agent: Any, messages: list[dict], options: dict[str, Any], stops: list[str]) -> AsyncIterator[Any]:
    """The agent's events, with the text cut at the first stop string (the answer is then cancelled
    and its Final reports the text up to the stop, as `stop`)."""
    from dataclasses import replace

    from tooltoken import Final, TextDelta

    cancel = threading.Event()
    stopper = StopFilter(stops)
    shown: list[str] = []
    async for event in aiter_in_thread(lambda: agent.stream(messages, cancel=cancel, **options), cancel):
        if isinstance(event, TextDelta):
            text = stopper.feed(event.text)
            if text:
                shown.append(text)
                yield TextDelta(text)
            if stopper.hit:
                cancel.set()
        elif isinstance(event, Final):
            tail = stopper.flush()
            if tail:
                shown.append(tail)
                yield TextDelta(tail)
            if stopper.hit:
                answer = "".join(shown)
                event = replace(event, answer=answer, stop_reason="stop", message="stopped at a stop sequence",
                                citations=[c for c in event.citations if f"[{c.marker}]" in answer])
            yield event
        elif not stopper.hit:
            yield event


async def _answer(agent: Any, messages: list[dict], options: dict[str, Any], stops: list[str]) -> tuple[str, Any]:
    from tooltoken import Final, TextDelta

    parts, final = [], None
    async for event in _events(agent, messages, options, stops):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, Final):
            final = event
    return "".join(parts), final


async def _stream(agent: Any, messages: list[dict], options: dict[str, Any], stops: list[str], usage_in_stream: bool,
                  rid: str, name: str, release: Callable[[], None]) -> AsyncIterator[bytes]:
    from tooltoken import Final, TextDelta, ToolCall, ToolResult

    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
        body = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **more}
        return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        try:
            async for event in _events(agent, messages, options, stops):
                if isinstance(event, TextDelta):
                    yield chunk({"content": event.text})
                elif isinstance(event, ToolCall):
                    yield chunk({}, tooltoken={"event": "tool_call", **asdict(event)})
                elif isinstance(event, ToolResult):
                    yield chunk({}, tooltoken={"event": "tool_result", **asdict(event)})
                elif isinstance(event, Final):
                    yield chunk({}, finish_reason(event.stop_reason), tooltoken=extra(event))
                    if usage_in_stream:
                        body = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": name,
                                "choices": [], "usage": _usage(event)}
                        yield b"data: " + json.dumps(body).encode() + b"\n\n"
        except Exception as exc:  # the status line is gone: say it in the stream, as OpenAI does
            body = {"error": {"message": f"{type(exc).__name__}: {exc}", "type": "server_error", "code": None}}
            yield b"data: " + json.dumps(body).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
    finally:
        release()


def serve(app: Any, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run `app` with uvicorn until interrupted (Ctrl-C)."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("the server needs its extra: pip install 'tooltoken[server]'") from None
    # proxy_headers off: X-Forwarded-For from a local client must not pick its rate-limit bucket
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, proxy_headers=False, lifespan="off")
    uvicorn.Server(config).run()
