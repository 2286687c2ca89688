"""A small OpenAI-compatible server for tests: real HTTP on 127.0.0.1, scripted answers.

Each request pops the next scripted action; with none scripted, chat answers
like ``OfflineModel`` would (so conformance tests run the same contract over
HTTP) and embeddings come from ``HashingEmbedder``.
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

from agents import HashingEmbedder, Message, OfflineModel, ToolCall, ToolSpec

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


Action = Answer | Status | Stall


@dataclass
class FakeOpenAI:
    """The server's state: what to answer next and what was asked."""

    url: str = ""
    script: list[Action] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.headers.clear()

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
    if include_usage:
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
    reply = await OfflineModel().complete(messages, tools)
    return Answer(
        content=reply.content,
        tool_calls=[(c.name, json.dumps(c.arguments)) for c in reply.tool_calls],
        usage=(max(1, reply.prompt_tokens), max(1, reply.completion_tokens)),
    )


def build_app(state: FakeOpenAI) -> FastAPI:
    app = FastAPI()

    async def next_action(request: Request) -> tuple[dict[str, Any], Action | None]:
        body = await request.json()
        state.requests.append(body)
        state.headers.append(dict(request.headers))
        action = state.script.pop(0) if state.script else None
        if isinstance(action, Stall):
            await asyncio.sleep(action.seconds)
            action = state.script.pop(0) if state.script else None
        return body, action

    def error(status: Status) -> Response:
        headers = {"retry-after": status.retry_after} if status.retry_after else {}
        return JSONResponse(
            {"error": {"message": f"scripted {status.code}", "type": "test", "code": None}},
            status_code=status.code,
            headers=headers,
        )

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body, action = await next_action(request)
        if isinstance(action, Status):
            return error(action)
        answer = action if isinstance(action, Answer) else await _offline_answer(body)
        model = body["model"]
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _stream(model, answer, include), media_type="text/event-stream"
            )
        message: dict[str, Any] = {"role": "assistant", "content": answer.content or None}
        if answer.tool_calls:
            message["tool_calls"] = _calls(answer)
        return JSONResponse(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": _usage(answer),
            }
        )

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
