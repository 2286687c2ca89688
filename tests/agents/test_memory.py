"""Short-term memory folds old turns into a summary; long-term memory recalls with filters."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from vouch.agents import (
    Agent,
    Endpoint,
    HashingEmbedder,
    InMemoryVectorStore,
    LongTermMemory,
    Message,
    Models,
    ModelSettings,
    OfflineModel,
    Price,
    PriceTable,
    ShortTermMemory,
    SQLiteVectorStore,
    ToolCall,
    UsageLedger,
    estimate_message_tokens,
    estimate_tokens,
    memory_tools,
)
from vouch.agents._model import SUMMARIZE_TASK

from .fake_openai import Answer, FakeOpenAI

ESCROW = "The escrow contract for trade 17 is 0x5FbDB2315678afecb367f032d93F642f64180aa3."
CHATTER = "Lovely weather again today, we should talk about something else soon enough."


def long_conversation(memory: ShortTermMemory, turns: int = 40) -> None:
    memory.add(Message(role="user", content=f"Hello. {ESCROW} Please remember it."))
    memory.add(Message(role="assistant", content="Noted, I will keep it."))
    for i in range(turns):
        role = "user" if i % 2 == 0 else "assistant"
        memory.add(Message(role=role, content=CHATTER))


def test_token_estimate_needs_no_tokenizer() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello world") == 4  # two words of 5 chars: 2 tokens each
    assert estimate_tokens("0x5FbDB2315678afecb367f032d93F642f64180aa3") == 11
    msgs = [Message(role="user", content="hi"), Message(role="assistant", content="hello")]
    assert estimate_message_tokens(msgs) == 4 + 1 + 4 + 2


def test_a_long_conversation_is_summarized_and_still_answers_an_early_fact() -> None:
    memory = ShortTermMemory(
        Models().for_tier("small"), window_tokens=250, keep_recent=4, instructions="You help."
    )
    memory.pin("settlement", "Trade 17 settles in USDC on chain 31337.")
    long_conversation(memory)
    assert memory.tokens() > 250
    assert asyncio.run(memory.fit())
    assert memory.tokens() <= 250
    assert len(memory.turns) == 4 and memory.folds == 1
    assert ESCROW in memory.summary and CHATTER not in memory.summary
    system = memory.context()[0].content
    assert "Trade 17 settles in USDC on chain 31337." in system  # pinned: verbatim

    memory.add(Message(role="user", content="What is the escrow contract for trade 17?"))
    reply = asyncio.run(OfflineModel().complete(memory.context(), []))
    assert "0x5FbDB2315678afecb367f032d93F642f64180aa3" in reply.content


def test_summary_runs_on_the_small_tier_and_is_charged(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    settings = ModelSettings(
        small=endpoint.model_copy(update={"model": "mini"}),
        large=endpoint.model_copy(update={"model": "maxi"}),
        prices=PriceTable(
            prices={"*": Price(input_per_mtok=Decimal(1), output_per_mtok=Decimal(1))}
        ),
    )
    ledger = UsageLedger("run-mem", settings.prices)
    memory = ShortTermMemory(Models(settings).for_tier("small"), window_tokens=200, ledger=ledger)
    long_conversation(memory)
    server.then(Answer(f"Summary: {ESCROW}", usage=(500, 20)))
    asyncio.run(memory.fit())
    [request] = server.requests
    assert request["model"] == "mini"
    assert request["messages"][0]["content"].startswith(SUMMARIZE_TASK)
    assert "0x5FbDB2315678afecb367f032d93F642f64180aa3" in request["messages"][1]["content"]
    assert memory.summary == f"Summary: {ESCROW}"
    assert ledger.by_agent()["memory"].tokens == 520


def test_a_tool_result_is_never_separated_from_its_call() -> None:
    memory = ShortTermMemory(OfflineModel(), window_tokens=60, keep_recent=1)
    for i in range(6):
        memory.add(Message(role="user", content=f"{CHATTER} {i}"))
    call = ToolCall(id="c1", name="price", arguments={"feed": "ETH/USD"})
    memory.add(Message(role="assistant", tool_calls=[call]))
    memory.add(Message(role="tool", content="3000", tool_call_id="c1"))
    asyncio.run(memory.fit())
    assert [m.role for m in memory.turns] == ["assistant", "tool"]


def test_memory_under_its_window_is_left_alone() -> None:
    memory = ShortTermMemory(OfflineModel(), window_tokens=10_000)
    long_conversation(memory, turns=4)
    assert not asyncio.run(memory.fit())
    assert memory.summary == "" and len(memory.turns) == 6


def test_long_term_memory_recalls_by_similarity_with_filters(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    memory = LongTermMemory(
        embedder, SQLiteVectorStore(tmp_path / "memory.db", embedder.dimensions)
    )

    async def scenario() -> None:
        await memory.remember("Trade 17 settled at 3000 USDC per WETH.", "outcome", {"trade": 17})
        await memory.remember(
            "Trade 18 was refused: price outside bounds.", "outcome", {"trade": 18}
        )
        await memory.remember("The settlement gate refunds after expiry.", "document")
        [best] = await memory.recall("how did trade 17 settle", k=1)
        assert best.text.startswith("Trade 17") and best.kind == "outcome"
        docs = await memory.recall("trade settle", where={"kind": "document"})
        assert [d.kind for d in docs] == ["document"]
        late = await memory.recall("trade", where={"trade": {"$gte": 18}})
        assert [h.metadata["trade"] for h in late] == [18]

    asyncio.run(scenario())


def test_embedder_and_store_must_agree_on_dimensions() -> None:
    with pytest.raises(ValueError, match="512-d vectors, store holds 8-d"):
        LongTermMemory(HashingEmbedder(), InMemoryVectorStore(8))


def test_memory_tools_store_and_recall_inside_an_agent() -> None:
    embedder = HashingEmbedder()
    store, recall = memory_tools(LongTermMemory(embedder, InMemoryVectorStore(embedder.dimensions)))

    class Rememberer(OfflineModel):
        async def complete(self, messages, tools):  # type: ignore[no-untyped-def]
            from vouch.agents import ModelReply

            done = sum(m.role == "tool" for m in messages)
            if done == 0:
                args = {"text": "The DON has 4 nodes, f=1.", "kind": None}
                return ModelReply(
                    tool_calls=[ToolCall(id="1", name="memory_store", arguments=args)]
                )
            if done == 1:
                args = {"query": "how many DON nodes", "k": None, "kind": None}
                return ModelReply(
                    tool_calls=[ToolCall(id="2", name="memory_recall", arguments=args)]
                )
            return ModelReply(content=messages[-1].content)

    result = asyncio.run(
        Agent("m", model=Rememberer(), tools=[store, recall]).run("remember and recall")
    )
    assert "The DON has 4 nodes, f=1." in result.answer
    assert result.trace[1].kind == "tool" and result.trace[3].kind == "tool"


def test_folded_summaries_are_archived_in_long_term_memory() -> None:
    embedder = HashingEmbedder()
    archive = LongTermMemory(embedder, InMemoryVectorStore(embedder.dimensions))
    memory = ShortTermMemory(
        OfflineModel(),
        window_tokens=250,
        keep_recent=4,
        archive=archive,
        archive_metadata={"run": "r-17"},
    )
    long_conversation(memory)
    assert asyncio.run(memory.fit())

    async def recall() -> list[Any]:
        return await archive.recall("escrow contract trade 17", k=1, where={"kind": "summary"})

    [hit] = asyncio.run(recall())
    assert hit.text == memory.summary and ESCROW in hit.text
    assert hit.metadata["run"] == "r-17" and hit.metadata["fold"] == memory.folds == 1


def test_an_agents_finished_runs_are_kept_as_outcomes() -> None:
    embedder = HashingEmbedder()
    outcomes = LongTermMemory(embedder, InMemoryVectorStore(embedder.dimensions))
    agent = Agent("settler", model=OfflineModel(), tools=[], long_term=outcomes)
    result = asyncio.run(agent.run("Say the settled price of trade 17: 3000 USDC"))
    assert result.answer

    async def recall() -> list[Any]:
        return await outcomes.recall("trade 17 settled price", k=3, where={"kind": "outcome"})

    hits = asyncio.run(recall())
    assert [h.text for h in hits] == [result.answer]
    assert hits[0].metadata["agent"] == "settler"
    assert hits[0].metadata["goal"].startswith("Say the settled price")
