"""Model tiers from settings; typed tools: schemas, flags, costs, errors as observations."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from pydantic import BaseModel, Field

from vouch.agents import (
    Agent,
    ChatModel,
    Endpoint,
    HashingEmbedder,
    Message,
    ModelConfigError,
    ModelReply,
    Models,
    ModelSettings,
    OfflineModel,
    OpenAIEmbedder,
    Price,
    PriceTable,
    Tool,
    ToolCall,
    ToolSpec,
    strict_schema,
)

from .fake_openai import Answer, FakeOpenAI

FREE = Price(input_per_mtok=Decimal(0), output_per_mtok=Decimal(0))


def test_with_nothing_configured_every_tier_is_offline() -> None:
    models = Models()
    assert isinstance(models.for_tier("small"), OfflineModel)
    assert models.for_tier("large") is models.for_tier("small")
    assert isinstance(models.embedder(), HashingEmbedder)


def test_tiers_map_to_their_endpoints_and_fall_back_to_each_other(endpoint: Endpoint) -> None:
    small = endpoint.model_copy(update={"model": "mini"})
    large = endpoint.model_copy(update={"model": "maxi"})
    prices = PriceTable(prices={"mini": FREE, "maxi": FREE})
    both = Models(ModelSettings(small=small, large=large, prices=prices))
    assert both.for_tier("small").name == "mini" and both.for_tier("large").name == "maxi"
    assert both.for_tier("small") is both.for_tier("small")
    only_small = Models(ModelSettings(small=small, prices=prices))
    assert only_small.for_tier("large").name == "mini"


def test_the_engine_asks_a_tier_and_the_request_names_its_model(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    settings = ModelSettings(
        small=endpoint.model_copy(update={"model": "mini"}),
        large=endpoint.model_copy(update={"model": "maxi"}),
        prices=PriceTable(prices={"*": FREE}),
    )
    models = Models(settings)
    server.then(Answer("plan"), Answer("summary"))
    asyncio.run(models.for_tier("large").complete([Message(role="user", content="plan it")], []))
    asyncio.run(models.for_tier("small").complete([Message(role="user", content="sum it")], []))
    assert [r["model"] for r in server.requests] == ["maxi", "mini"]


def test_settings_need_no_prices_unless_required(endpoint: Endpoint) -> None:
    ModelSettings(small=endpoint)  # library use with a real model, no budget: no price table
    with pytest.raises(ModelConfigError, match="no price for model 'test-model'"):
        ModelSettings(small=endpoint, prices=PriceTable(prices={}, require=True))


def test_configured_embeddings_endpoint_is_used(endpoint: Endpoint) -> None:
    settings = ModelSettings(embeddings=endpoint, embedding_dimensions=64)
    embedder = Models(settings).embedder()
    assert isinstance(embedder, OpenAIEmbedder) and embedder.dimensions == 64


class Transfer(BaseModel):
    """Move funds."""

    to: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    amount: int = Field(gt=0)
    memo: str = ""


def test_tool_from_a_typed_function() -> None:
    def transfer(args: Transfer) -> dict[str, int]:
        """Send tokens to an address."""
        return {"sent": args.amount}

    tool = Tool.from_function(transfer, irreversible=True, cost_usd=Decimal("0.002"))
    assert (tool.name, tool.description, tool.args_model) == (
        "transfer",
        "Send tokens to an address.",
        Transfer,
    )
    assert tool.irreversible and tool.cost_usd == Decimal("0.002")
    spec = tool.spec()
    assert spec.strict and spec.parameters == strict_schema(Transfer)
    assert asyncio.run(tool.fn(Transfer(to="0x" + "ab" * 20, amount=5))) == {"sent": 5}


def test_from_function_refuses_untyped_callables() -> None:
    def untyped(args):  # type: ignore[no-untyped-def]
        return args

    with pytest.raises(TypeError, match="one pydantic model argument"):
        Tool.from_function(untyped)


def test_strict_schema_closes_nested_objects() -> None:
    class Leg(BaseModel):
        token: str
        amount: int = 0

    class Swap(BaseModel):
        legs: list[Leg]
        note: str | None = None

    schema = strict_schema(Swap)
    assert "$defs" not in schema and "$ref" not in str(schema)  # flat: nested models inlined
    leg = schema["properties"]["legs"]["items"]
    assert leg["additionalProperties"] is False and leg["required"] == ["token", "amount"]
    assert leg["properties"]["amount"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert schema["required"] == ["legs", "note"]
    assert "default" not in str(schema)


class Scripted(ChatModel):
    """Calls the named tool once, then repeats the observation it got."""

    def __init__(self, call: ToolCall) -> None:
        self.call = call

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        if messages[-1].role == "tool":
            return ModelReply(content=f"observed: {messages[-1].content}")
        return ModelReply(tool_calls=[self.call])


def test_a_failing_tool_comes_back_as_an_observation() -> None:
    async def broken(_: Transfer) -> str:
        raise ConnectionError("RPC at http://127.0.0.1:8545 refused")

    tool = Tool(name="transfer", description="", args_model=Transfer, fn=broken, irreversible=True)
    call = ToolCall(id="1", name="transfer", arguments={"to": "0x" + "11" * 20, "amount": 1})
    result = asyncio.run(Agent("a", model=Scripted(call), tools=[tool]).run("pay"))
    assert result.answer == (
        "observed: error: tool transfer failed: ConnectionError: RPC at http://127.0.0.1:8545 refused"
    )
    assert [e.kind for e in result.trace] == ["model", "tool_error", "model"]


def test_reraise_lets_chosen_errors_stop_the_run() -> None:
    async def broken(_: Transfer) -> str:
        raise ConnectionError("down")

    tool = Tool(
        name="t", description="", args_model=Transfer, fn=broken, reraise=(ConnectionError,)
    )
    call = ToolCall(id="1", name="t", arguments={"to": "0x" + "11" * 20, "amount": 1})
    with pytest.raises(ConnectionError):
        asyncio.run(Agent("a", model=Scripted(call), tools=[tool]).run("pay"))
