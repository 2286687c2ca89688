"""Built-in tools against the local server; embeddings retries and checks."""

from __future__ import annotations

import asyncio

import pytest

from vouch.agents import (
    Agent,
    Endpoint,
    ModelError,
    OpenAIEmbedder,
    ToolCall,
    evm_read_tool,
    http_fetch_tool,
)

from .fake_openai import EMBED_DIMENSIONS, FakeOpenAI, Status
from .test_tiers_and_tools import Scripted


def test_http_fetch_reads_an_allowed_host(server: FakeOpenAI) -> None:
    tool = http_fetch_tool({"127.0.0.1"})
    args = tool.parse(
        ToolCall(id="1", name="http_fetch", arguments={"url": server.url.replace("/v1", "/page")})
    )
    out = asyncio.run(tool.fn(args))
    assert out["status"] == 200 and out["text"] == "ETH/USD reference: 3000.5"


def test_http_fetch_refusal_is_an_observation() -> None:
    tool = http_fetch_tool({"127.0.0.1"})
    call = ToolCall(id="1", name="http_fetch", arguments={"url": "https://example.com/x"})
    result = asyncio.run(Agent("a", model=Scripted(call), tools=[tool]).run("fetch"))
    assert "host 'example.com' is not allowed" in result.answer
    assert result.trace[1].kind == "tool_error"


def test_evm_read_is_read_only_json_rpc(server: FakeOpenAI) -> None:
    tool = evm_read_tool(server.url.replace("/v1", "/rpc"))
    address = "0x" + "12" * 20
    balance = tool.parse(
        ToolCall(
            id="1", name="evm_read", arguments={"method": "eth_getBalance", "address": address}
        )
    )
    assert asyncio.run(tool.fn(balance))["int"] == 10**18
    call = tool.parse(
        ToolCall(
            id="2",
            name="evm_read",
            arguments={"method": "eth_call", "address": address, "data": "0x1234"},
        )
    )
    assert asyncio.run(tool.fn(call))["result"] == "0x2a"
    assert server.requests[-1]["params"] == [{"to": address, "data": "0x1234"}, "latest"]
    with pytest.raises(ValueError, match="eth_sendTransaction"):
        tool.parse(ToolCall(id="3", name="evm_read", arguments={"method": "eth_sendTransaction"}))


def test_embeddings_retry_on_429(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(Status(429))
    embedder = OpenAIEmbedder(endpoint, EMBED_DIMENSIONS)
    [vector] = asyncio.run(embedder.embed(["hello"]))
    assert len(vector) == EMBED_DIMENSIONS and len(server.requests) == 2


def test_embeddings_of_the_wrong_size_are_refused(server: FakeOpenAI, endpoint: Endpoint) -> None:
    with pytest.raises(ModelError, match="expected size 1536"):
        asyncio.run(OpenAIEmbedder(endpoint, 1536).embed(["hello"]))
