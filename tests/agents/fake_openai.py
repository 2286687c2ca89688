"""A small OpenAI-compatible server for tests: real HTTP on 127.0.0.1, scripted answers.

Each request pops the next scripted action; with none scripted, chat answers
like ``OfflineModel`` would (so conformance tests run the same contract over
HTTP) and embeddings come from ``HashingEmbedder``.

Misbehaving modes, as hosted and self-hosted servers do:
- ``served_as``: the model name the server answers with (a dated snapshot such as
  ``gpt-4o-mini-2024-07-18`` for a configured ``gpt-4o-mini``);
- ``models``: what ``GET /v1/models`` lists (None: the route answers 404);
- ``Garbage``: a tool call whose arguments are not JSON, or an answer of prose only;
- ``Refusal``: an assistant message with ``refusal`` set and no content;
- ``Answer(usage=None)``: no usage field, also in streams (``include_usage`` ignored);
- ``Status(429, retry_after=...)`` storms and ``Stall`` timeouts;
- ``strict``: like OpenAI's structured outputs, a tool with ``strict: true`` whose schema
  is not closed, not fully required, or uses ``$ref``/``$defs`` is refused with HTTP 400,
  and ``FollowSchema`` answers a tool call whose arguments are generated from the
  tool's schema alone (the first enum value, every required field), as a model bound
  to the schema would fill it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from vouch._agent_settlement import settlement_offline_model
from vouch.agents import HashingEmbedder, Message, ToolCall, ToolSpec

EMBED_DIMENSIONS = 64


@dataclass
class Answer:
    """A chat answer: text and/or tool calls given as (name, raw JSON arguments)."""

    content: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    usage: tuple[int, int] | None = (11, 7)


@dataclass
class Status:
    """An HTTP error answer."""

    code: int
    retry_after: str | None = None


@dataclass
class Stall:
    """Sleep before answering (longer than the client's timeout)."""

    seconds: float


@dataclass
class Garbage:
    """A ``tool`` call whose arguments are the raw (invalid JSON) ``text``."""

    tool: str
    text: str = '{"steps": [ {"id": "a", '


@dataclass
class Refusal:
    """A refusal: no content, no tool call, the ``refusal`` field set."""

    text: str = "I can't help with that."


@dataclass
class FollowSchema:
    """Call ``tool`` with arguments generated from its schema; ``fill`` overrides top-level fields."""

    tool: str
    fill: dict[str, Any] = field(default_factory=dict)
    items: int = 1


Action = Answer | Status | Stall | Garbage | Refusal | FollowSchema


@dataclass
class FakeOpenAI:
    """The server's state: what to answer next and what was asked."""

    url: str = ""
    script: list[Action] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    served_as: str | None = None
    models: list[str] | None = None
    strict: bool = True
    generation: int = 0  # bumped by reset: a request of an earlier test takes nothing of this one's

    def reset(self) -> None:
        self.generation += 1
        self.script.clear()
        self.requests.clear()
        self.headers.clear()
        self.served_as = None
        self.models = None
        self.strict = True

    def then(self, *actions: Action) -> FakeOpenAI:
        self.script.extend(actions)
        return self

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "messages" in r]


def _chunk(model: str, delta: dict[str, Any] | None, usage: Any = None) -> str:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": None}],
        "usage": usage,
    }
    return f"data: {json.dumps(body)}\n\n"


def _usage(answer: Answer) -> dict[str, int] | None:
    if answer.usage is None:
        return None
    p, c = answer.usage
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _completion(
    model: str, message: dict[str, Any], usage: tuple[int, int] | None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": None
        if usage is None
        else {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


def _calls(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
        for i, (n, a) in enumerate(answer.tool_calls)
    ]


async def _stream(model: str, answer: Answer, include_usage: bool) -> AsyncIterator[str]:
    yield _chunk(model, {"role": "assistant", "content": ""})
    for i in range(0, len(answer.content), 4):
        yield _chunk(model, {"content": answer.content[i : i + 4]})
    for i, call in enumerate(_calls(answer)):
        raw = call["function"]["arguments"]
        head = {"index": i, "id": call["id"], "type": "function"}
        yield _chunk(
            model,
            {
                "tool_calls": [
                    {**head, "function": {"name": call["function"]["name"], "arguments": raw[:5]}}
                ]
            },
        )
        yield _chunk(model, {"tool_calls": [{"index": i, "function": {"arguments": raw[5:]}}]})
    if include_usage and answer.usage is not None:  # a server may ignore include_usage
        yield _chunk(model, None, _usage(answer))
    yield "data: [DONE]\n\n"


async def _offline_answer(body: dict[str, Any]) -> Answer:
    messages = []
    for m in body["messages"]:
        calls = [
            ToolCall(
                id=c["id"],
                name=c["function"]["name"],
                arguments=json.loads(c["function"]["arguments"]),
            )
            for c in m.get("tool_calls") or []
        ]
        messages.append(
            Message(
                role=m["role"],
                content=m.get("content") or "",
                tool_calls=calls,
                tool_call_id=m.get("tool_call_id"),
            )
        )
    tools = [ToolSpec(**t["function"]) for t in body.get("tools", [])]
    reply = await settlement_offline_model().complete(messages, tools)
    return Answer(
        content=reply.content,
        tool_calls=[(c.name, json.dumps(c.arguments)) for c in reply.tool_calls],
        usage=(max(1, reply.prompt_tokens), max(1, reply.completion_tokens)),
    )


def schema_problems(schema: Any, where: str = "") -> list[str]:
    """Why a strict-mode schema would be refused (as OpenAI's structured outputs refuse)."""
    problems: list[str] = []
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            problems += schema_problems(item, f"{where}[{i}]")
        return problems
    if not isinstance(schema, dict):
        return problems
    for key in ("$ref", "$defs", "definitions"):
        if key in schema:
            problems.append(f"{where or '(root)'}: '{key}' is not supported here")
    props = schema.get("properties")
    if schema.get("type") == "object" or isinstance(props, dict):
        if schema.get("additionalProperties") is not False:
            problems.append(f"{where or '(root)'}: additionalProperties must be false")
        if isinstance(props, dict) and set(schema.get("required", [])) != set(props):
            problems.append(f"{where or '(root)'}: every property must be required")
    for key, value in schema.items():
        if key in ("properties",) and isinstance(value, dict):
            for name, sub in value.items():
                problems += schema_problems(sub, f"{where}.{name}")
        elif key in ("items", "anyOf", "oneOf", "allOf"):
            problems += schema_problems(value, f"{where}.{key}")
    return problems


def fill_schema(schema: dict[str, Any], items: int = 1, depth: int = 0) -> Any:
    """Arguments a schema-bound model would produce: enums' first value, every property;
    ``items`` entries in an outermost array, none in the arrays inside it."""
    if "anyOf" in schema:
        return fill_schema(schema["anyOf"][0], items, depth)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: fill_schema(v, items, depth) for k, v in props.items()}
    if kind == "array":
        count = items if depth == 0 else 0
        return [fill_schema(schema.get("items", {}), items, depth + 1) for _ in range(count)]
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return 1
    if kind == "null":
        return None
    return "s1" if "pattern" in schema else "text"


def build_app(state: FakeOpenAI) -> FastAPI:
    app = FastAPI()

    async def next_action(request: Request) -> tuple[dict[str, Any], Action | None]:
        body = await request.json()
        state.requests.append(body)
        state.headers.append(dict(request.headers))
        action = state.script.pop(0) if state.script else None
        if isinstance(action, Stall):
            generation = state.generation
            await asyncio.sleep(action.seconds)
            # a stall that outlives its test (the client gave up) must not take the next
            # test's scripted answer: that test then saw the offline default (a flake)
            stale = generation != state.generation
            action = state.script.pop(0) if state.script and not stale else None
        return body, action

    def error(status: Status) -> Response:
        headers = {"retry-after": status.retry_after} if status.retry_after else {}
        return JSONResponse(
            {"error": {"message": f"scripted {status.code}", "type": "test", "code": None}},
            status_code=status.code,
            headers=headers,
        )

    @app.get("/v1/models")
    async def models() -> Response:
        if state.models is None:
            return JSONResponse({"error": {"message": "not found"}}, status_code=404)
        data = [{"id": m, "object": "model", "created": 1, "owned_by": "t"} for m in state.models]
        return JSONResponse({"object": "list", "data": data})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body, action = await next_action(request)
        if isinstance(action, Status):
            return error(action)
        if state.strict:
            for tool in body.get("tools", []):
                function = tool["function"]
                problems = schema_problems(function["parameters"]) if function.get("strict") else []
                if problems:
                    message = f"Invalid schema for function '{function['name']}': {problems}"
                    return JSONResponse(
                        {"error": {"message": message, "type": "invalid_request_error"}},
                        status_code=400,
                    )
        model = state.served_as or body["model"]
        if isinstance(action, Refusal):
            message = {"role": "assistant", "content": None, "refusal": action.text}
            return JSONResponse(_completion(model, message, (20, 9)))
        if isinstance(action, Garbage):
            answer = Answer(tool_calls=[(action.tool, action.text)])
        elif isinstance(action, FollowSchema):
            spec = next(
                t["function"] for t in body["tools"] if t["function"]["name"] == action.tool
            )
            arguments = {**fill_schema(spec["parameters"], action.items), **action.fill}
            answer = Answer(tool_calls=[(action.tool, json.dumps(arguments))])
        else:
            answer = action if isinstance(action, Answer) else await _offline_answer(body)
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _stream(model, answer, include), media_type="text/event-stream"
            )
        message: dict[str, Any] = {"role": "assistant", "content": answer.content or None}
        if answer.tool_calls:
            message["tool_calls"] = _calls(answer)
        return JSONResponse(_completion(model, message, answer.usage))

    @app.get("/page")
    async def page() -> Response:
        return Response("ETH/USD reference: 3000.5", media_type="text/plain")

    @app.post("/rpc")
    async def rpc(request: Request) -> Response:
        body = await request.json()
        state.requests.append(body)
        results = {
            "eth_chainId": "0x7a69",
            "eth_getBalance": "0xde0b6b3a7640000",
            "eth_call": "0x2a",
        }
        if body["method"] not in results:
            return JSONResponse(
                {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32601, "message": "nope"}}
            )
        return JSONResponse({"jsonrpc": "2.0", "id": body["id"], "result": results[body["method"]]})

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body, action = await next_action(request)
        if isinstance(action, Status):
            return error(action)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = await HashingEmbedder(EMBED_DIMENSIONS).embed(texts)
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        data.reverse()  # servers may answer out of order; the client sorts by index
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        )

    return app


@dataclass
class _Running:
    server: uvicorn.Server
    thread: threading.Thread


def serve(state: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """Run the server in a thread on a free loopback port until the generator closes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(state),
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake OpenAI server did not start")
        time.sleep(0.01)
    state.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
