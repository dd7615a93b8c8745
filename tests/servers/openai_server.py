"""An OpenAI-compatible test server: POST /v1/chat/completions (JSON and SSE streaming), GET /v1/models.

It checks the bearer key (401 shaped like OpenAI's error JSON) and, unless told otherwise, behaves as
an "echo editor": it answers the structured output the request's JSON schema asks for, derived from
the article in the request (`<article>…</article>` in the first user message): the body comes back
faithfully (with a harmless polish such as "in order to" → "to"), the title from the document, the
excerpt from its first sentence, tags from its capitalised words, the category from the schema's
enum. So happy paths work without scripting.

Tests script what the next requests get, one action per chat request, in order:
    {"status": 429, "headers": {"retry-after": "1"}, "message": "…"}   an error answer
    {"delay": 2.0}                                  wait first (client timeouts); combines with the rest
    {"content": "not json"}                         this exact assistant content
    {"json": {...}}                                 this object as the assistant content
    {"rewrite": "drop_image"}                       the echo answer, damaged: drop_image, drop_link,
                                                    change_number, drop_heading, drop_table, drop_name,
                                                    drop_id
    {"refusal": "I can't"}                          a refusal
    {"finish_reason": "length"}                     the echo answer, marked as cut off
Every request is logged (method, path, headers, JSON body, status). A fixed latency can be added to
every request (the benchmarks use 50 ms).

Random faults (`fail_randomly(ratio, seed=…)`, tests/servers/faults.py): a seeded share of the chat
requests that no scripted action covers answer 429 with Retry-After, 500, or are held `delay` seconds
(past the client's timeout) before the normal answer; each such request's log entry says which
("fault"), and `random_faults()` counts them.

In pytest: `OpenAITestServer` runs uvicorn in a thread on an ephemeral port (tests/fixtures/llm.py).
For benchmarks: `python -m tests.servers.openai_server --port P --key K [--latency-ms 50]`; scripting
then goes through POST /_test/script, GET /_test/requests and POST /_test/reset.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.servers.faults import RandomFaults

DEFAULT_KEY = "sk-test-copydesk-0123456789abcdef"
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "test-model")

_ERRORS = {  # status -> (message, type, code), as OpenAI words them
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided: {masked}. You can find your API key at "
          "https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to use this model.", "invalid_request_error", "model_access_denied"),
    404: ("The model `{model}` does not exist or you do not have access to it.", "invalid_request_error",
          "model_not_found"),
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}  # fmt: skip
_POLISH = (
    (r"\bIn order to\b", "To"),
    (r"\bin order to\b", "to"),
    (r"\butili[sz]e\b", "use"),
    (r"\bvery unique\b", "unique"),
)


def _mask(key: str) -> str:
    return f"{key[:3]}{'*' * 4}{key[-4:]}" if len(key) > 8 else "****"


def error_body(status: int, message: str | None = None, **fmt: str) -> dict:
    default, kind, code = _ERRORS.get(status, ("Error.", "invalid_request_error", None))
    return {"error": {"message": message or default.format(**fmt), "type": kind, "param": None, "code": code}}


# --- the echo editor ---------------------------------------------------------------------------


def _text(markup: str) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", markup).split()))


def _article(messages: list[dict]) -> tuple[str, str]:
    """(the article between <article> tags of the first user message that has one, that message)"""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if message.get("role") == "user" and isinstance(content, str):
            found = re.search(r"<article>\n?(.*?)\n?</article>", content, re.S)
            if found:
                return found.group(1), content
    last = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    return (last if isinstance(last, str) else ""), ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "untitled"


def _outside_tags(markup: str, fn) -> str:
    """Apply fn to the first text segment (between tags) where it changes something."""
    parts = re.split(r"(<[^>]+>)", markup)
    for i, part in enumerate(parts):
        if not part.startswith("<"):
            changed = fn(part)
            if changed != part:
                parts[i] = changed
                return "".join(parts)
    return markup


def damage(body: str, kind: str) -> str:
    """The rewrites a bad model makes (what Copydesk's checks must catch)."""
    if kind == "drop_image":
        return re.sub(r"<img\b[^>]*>", "", body, count=1)
    if kind == "drop_link":
        return re.sub(r"<a\b[^>]*>(.*?)</a>", r"\1", body, count=1, flags=re.S)
    if kind == "drop_heading":
        return re.sub(r"<h([1-6])\b[^>]*>.*?</h\1>", "", body, count=1, flags=re.S)
    if kind == "drop_id":
        return re.sub(r'\s+id="[^"]*"', "", body, count=1)
    if kind == "drop_table":
        return re.sub(r"<table\b.*?</table>", "", body, count=1, flags=re.S)
    if kind == "change_number":
        return _outside_tags(body, lambda t: re.sub(r"\d+", lambda m: str(int(m.group()) + 1), t, count=1))
    if kind == "drop_name":  # the first capitalised word in mid-sentence becomes "someone"
        return _outside_tags(body, lambda t: re.sub(r"(?<=[a-z,] )[A-Z][a-z]+", "someone", t, count=1))
    raise ValueError(f"unknown rewrite {kind!r}")


def _fields(article: str, message: str) -> dict[str, Any]:
    text = _text(article)
    own_title = re.search(r"^The document's own title: (.+)$", message, re.M)
    heading = re.search(r"<h[1-6][^>]*>(.*?)</h[1-6]>", article, re.S)
    first_line = next((ln.strip() for ln in article.splitlines() if ln.strip() and not ln.endswith(":")), "")
    title = (
        own_title.group(1).strip()
        if own_title
        else _text(heading.group(1))
        if heading
        else " ".join(_text(first_line).split()[:8])
    ) or "Untitled"
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0][:280]
    names = Counter(re.findall(r"(?<=[a-z,] )[A-Z][a-zA-Z]{2,}", text))
    tags = [w for w, _ in names.most_common(5)] or sorted(set(re.findall(r"[a-z]{7,}", text)))[:3]
    return {"title": title, "excerpt": sentence, "slug": _slug(title), "tags": tags}


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = root.get("$defs", root.get("definitions", {}))[name]
    return schema


def _instance(schema: dict, root: dict, name: str, values: dict, text: str) -> Any:
    """A value for property `name`: the echo editor's own when it has one, else a minimal one."""
    schema = _resolve(schema, root)
    options = [_resolve(s, root) for s in schema.get("anyOf", [])] or [schema]
    enums = [v for s in options for v in s.get("enum", [s["const"]] if "const" in s else []) if v is not None]
    if enums:  # the category: the first that the article names, else null when allowed
        named = [v for v in enums if str(v).lower() in text.lower()]
        nullable = any(s.get("type") == "null" for s in options)
        return named[0] if named else (None if nullable else enums[0])
    if name in values:
        return values[name]
    kind = options[0].get("type", "string")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        props = options[0].get("properties", {})
        return {k: _instance(v, root, k, values, text) for k, v in props.items()}
    return {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "null": None}.get(
        kind, ""
    )


def echo_answer(body: dict, rewrite: str | None = None) -> str:
    article, message = _article(body.get("messages", []))
    edited = article
    for pattern, replacement in _POLISH:
        edited = re.sub(pattern, replacement, edited)
    if rewrite:
        edited = damage(edited, rewrite)
    values = {**_fields(article, message), "body_html": edited}
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        return json.dumps(_instance(schema, schema, "", values, _text(article)))
    if response_format.get("type") == "json_object":
        return json.dumps(values)
    return edited


# --- the ASGI app ------------------------------------------------------------------------------


class ServerState:
    def __init__(self, api_key: str | None, models=DEFAULT_MODELS, latency: float = 0.0) -> None:
        self.api_key = api_key  # None: any key is accepted
        self.models = list(models)
        self.latency = latency
        self.script: deque[dict] = deque()
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.random: RandomFaults | None = None

    def next_action(self, path: str = "/v1/chat/completions") -> dict:
        try:
            return self.script.popleft()
        except IndexError:
            pass
        rf = self.random
        chance = rf.take("POST", path) if rf is not None else None
        if chance is None:
            return {}
        if chance.kind == "timeout":
            return {"delay": rf.delay, "fault": "timeout"}
        status = int(chance.kind)
        headers = {"retry-after": f"{rf.retry_after:g}"} if status == 429 else {}
        return {"status": status, "headers": headers, "fault": chance.kind}

    def reset(self) -> None:
        with self.lock:
            self.script.clear()
            self.requests.clear()
            self.random = None


def _estimate_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


def create_app(state: ServerState) -> Starlette:
    async def authorized(request: Request, entry: dict) -> Response | None:
        if state.latency:
            await asyncio.sleep(state.latency)
        if state.api_key is None:
            return None
        given = request.headers.get("authorization", "")
        key = given.removeprefix("Bearer ").strip()
        if given.startswith("Bearer ") and key == state.api_key:
            return None
        entry["status"] = 401
        return JSONResponse(error_body(401, masked=_mask(key)), status_code=401)

    def log(request: Request, payload: Any) -> dict:
        entry = {
            "method": request.method,
            "path": request.url.path,
            "headers": dict(request.headers),
            "json": payload,
            "time": time.time(),
            "status": 200,
        }
        with state.lock:
            state.requests.append(entry)
        return entry

    async def chat_completions(request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        entry = log(request, payload)
        if (refused := await authorized(request, entry)) is not None:
            return refused
        if not isinstance(payload, dict) or not payload.get("messages"):
            entry["status"] = 400
            return JSONResponse(error_body(400, "'messages' is a required property"), status_code=400)
        action = state.next_action(request.url.path)
        entry["action"] = action
        if action.get("fault"):
            entry["fault"] = action["fault"]
        if action.get("delay"):
            await asyncio.sleep(action["delay"])
        model = payload.get("model", "")
        if "status" in action:
            status = int(action["status"])
            entry["status"] = status
            return JSONResponse(
                error_body(status, action.get("message"), model=model),
                status_code=status,
                headers=action.get("headers") or {},
            )
        if model not in state.models:
            entry["status"] = 404
            return JSONResponse(error_body(404, model=model), status_code=404)

        refusal = action.get("refusal")
        if refusal:
            content = None
        elif "content" in action:
            content = action["content"]
        elif "json" in action:
            content = json.dumps(action["json"])
        else:
            content = echo_answer(payload, action.get("rewrite"))
        finish_reason = action.get("finish_reason", "stop")
        usage = {
            "prompt_tokens": _estimate_tokens(payload["messages"]),
            "completion_tokens": _estimate_tokens(content or refusal or ""),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        if payload.get("stream"):
            include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _stream(completion_id, created, model, content, refusal, finish_reason, usage, include_usage),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_copydesk_test",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": refusal},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
            }
        )

    async def list_models(request: Request) -> Response:
        entry = log(request, None)
        if (refused := await authorized(request, entry)) is not None:
            return refused
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "copydesk-tests"} for m in state.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def get_model(request: Request) -> Response:
        entry = log(request, None)
        if (refused := await authorized(request, entry)) is not None:
            return refused
        model = request.path_params["model"]
        if model not in state.models:
            entry["status"] = 404
            return JSONResponse(error_body(404, model=model), status_code=404)
        return JSONResponse({"id": model, "object": "model", "created": 0, "owned_by": "copydesk-tests"})

    async def script(request: Request) -> Response:
        actions = await request.json()
        actions = actions if isinstance(actions, list) else [actions]
        state.script.extend(actions)
        return JSONResponse({"queued": len(state.script)})

    async def requests_log(request: Request) -> Response:
        with state.lock:
            return JSONResponse(list(state.requests))

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    async def faults(request: Request) -> Response:
        """POST {"ratio": 0.3, "seed": 1, ...} (RandomFaults' fields): random faults from now on;
        {"ratio": 0}: none. GET: what was served."""
        if request.method == "POST":
            options = await request.json()
            state.random = RandomFaults(**options) if options.get("ratio") else None
        return JSONResponse(state.random.summary() if state.random else {"seen": 0, "served": {}, "total": 0})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/_test/script", script, methods=["POST"]),
            Route("/_test/requests", requests_log, methods=["GET"]),
            Route("/_test/reset", reset, methods=["POST"]),
            Route("/_test/faults", faults, methods=["GET", "POST"]),
        ]
    )


async def _stream(completion_id, created, model, content, refusal, finish_reason, usage, include_usage):
    def event(delta: dict | None, finish: str | None = None, with_usage: bool = False) -> str:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_copydesk_test",
            "choices": [] if delta is None else [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
        }  # fmt: skip
        if with_usage:
            chunk["usage"] = usage
        return f"data: {json.dumps(chunk)}\n\n"

    yield event({"role": "assistant", "content": "", "refusal": None})
    if refusal:
        yield event({"refusal": refusal})
    for piece in re.findall(r"\S*\s*", content or ""):
        if piece:
            yield event({"content": piece})
            await asyncio.sleep(0)
    yield event({}, finish_reason)
    if include_usage:
        yield event(None, with_usage=True)
    yield "data: [DONE]\n\n"


# --- running it -----------------------------------------------------------------------------------


class OpenAITestServer:
    """The app under uvicorn in a thread, on an ephemeral loopback port, with scripting helpers."""

    def __init__(
        self,
        api_key: str | None = DEFAULT_KEY,
        *,
        models=DEFAULT_MODELS,
        latency: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.state = ServerState(api_key, models, latency)
        self.app = create_app(self.state)
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> OpenAITestServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))  # the port is ours before uvicorn starts: no race with other tests
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", loop="asyncio", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="openai-test-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the OpenAI test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL / OpenAI(base_url=…) takes."""
        return f"{self.url}/v1"

    # the request log
    @property
    def requests(self) -> list[dict]:
        with self.state.lock:
            return list(self.state.requests)

    @property
    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def reset(self) -> None:
        self.state.reset()
        self.state.latency = 0.0

    # scripting: each call queues actions for the next chat requests
    def queue(self, *actions: dict) -> None:
        self.state.script.extend(actions)

    def fail(self, status: int, *, headers: dict | None = None, message: str | None = None, times: int = 1):
        self.queue(*[{"status": status, "headers": headers or {}, "message": message}] * times)

    def rate_limit(
        self, *, retry_after: float | str | None = None, retry_after_ms: int | None = None, times=1
    ):
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        self.fail(429, headers=headers, times=times)

    def fail_randomly(
        self,
        ratio: float,
        *,
        seed: int | str = 0,
        mix: dict[str, float] | None = None,
        retry_after: float = 1.0,
        delay: float = 5.0,
    ) -> RandomFaults:
        """From now on, fail `ratio` of the chat requests (those no scripted action covers), chosen by
        `seed`: 429 with Retry-After `retry_after`, 500, or a timeout (held `delay` seconds, then
        answered). mix: {"429": w, "500": w, "timeout": w}, equal weights by default."""
        kwargs = {"mix": mix} if mix else {}
        self.state.random = RandomFaults(ratio, seed=seed, retry_after=retry_after, delay=delay, **kwargs)
        return self.state.random

    def random_faults(self) -> dict:
        """{"seen": chat requests considered, "served": {kind: count}, "total": faults served}."""
        return self.state.random.summary() if self.state.random else {"seen": 0, "served": {}, "total": 0}

    def slow(self, seconds: float, times: int = 1) -> None:
        self.queue(*[{"delay": seconds}] * times)

    def answer(self, content: str, times: int = 1) -> None:
        self.queue(*[{"content": content}] * times)

    def invalid_json(self, times: int = 1) -> None:
        self.answer('{"title": "Half an answer", "body_html": "<p>cut', times)

    def rewrite(self, kind: str, times: int = 1) -> None:
        self.queue(*[{"rewrite": kind}] * times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--key", default=DEFAULT_KEY, help="the bearer key to accept ('' accepts any)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument("--model", action="append", help="a model id to serve (repeatable)")
    parser.add_argument("--fault-ratio", type=float, default=0.0, help="share of chat requests failed at random")
    parser.add_argument("--fault-seed", default="0", help="seed of the random faults")
    parser.add_argument("--fault-delay", type=float, default=5.0, help="seconds a 'timeout' fault holds")
    args = parser.parse_args(argv)
    state = ServerState(args.key or None, args.model or DEFAULT_MODELS, args.latency_ms / 1000)
    if args.fault_ratio:
        state.random = RandomFaults(args.fault_ratio, seed=args.fault_seed, delay=args.fault_delay)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
