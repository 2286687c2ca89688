"""Short-term memory inside the agent loop: a conversation that outgrows its window.

The proof point of the layer: a long conversation through the real ``openai``
client against the local server exceeds its window, is summarized by the small
tier, every prompt sent stays under the window, and an early fact is still
answered from the summary.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from vouch.agents import (
    Agent,
    ChatModel,
    Endpoint,
    Message,
    ModelReply,
    Models,
    ModelSettings,
    OfflineModel,
    Price,
    PriceTable,
    ShortTermMemory,
    Tool,
    ToolCall,
    ToolSpec,
    UsageLedger,
    estimate_message_tokens,
)
from vouch.agents._model import SUMMARIZE_TASK

from .fake_openai import Answer, FakeOpenAI

ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ESCROW = f"The escrow contract for trade 17 is {ADDRESS}."
CHATTER = "Lovely weather again today, we should talk about something else soon enough."
QUESTION = "What is the escrow contract for trade 17?"
WINDOW = 220
PRICES = PriceTable(prices={"*": Price(input_per_mtok=Decimal(1), output_per_mtok=Decimal(2))})


def tiered(endpoint: Endpoint) -> Models:
    return Models(
        ModelSettings(
            small=endpoint.model_copy(update={"model": "mini"}),
            large=endpoint.model_copy(update={"model": "maxi"}),
            prices=PRICES,
        )
    )


def as_messages(request: dict[str, Any]) -> list[Message]:
    """The conversation a chat request carried, as the estimator sees it."""
    out = []
    for m in request["messages"]:
        calls = [
            ToolCall(id=c["id"], name=c["function"]["name"], arguments={})
            for c in m.get("tool_calls") or []
        ]
        out.append(Message(role=m["role"], content=m.get("content") or "", tool_calls=calls))
    return out


def is_summary(request: dict[str, Any]) -> bool:
    return bool(request["messages"][0]["content"].startswith(SUMMARIZE_TASK))


def chat(agent: Agent, ledger: UsageLedger, turns: int = 12) -> str:
    async def talk() -> str:
        await agent.run(f"Hello. {ESCROW} Please remember it.", ledger=ledger)
        for _ in range(turns):
            await agent.run(CHATTER, ledger=ledger)
        return (await agent.run(QUESTION, ledger=ledger)).answer

    return asyncio.run(talk())


def test_a_long_conversation_over_http_is_summarized_by_the_small_tier_and_recalls_an_early_fact(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    models = tiered(endpoint)
    memory = ShortTermMemory(models.for_tier("small"), window_tokens=WINDOW, keep_recent=4)
    agent = Agent(
        "assistant",
        model=models.for_tier("large"),
        tools=[],
        instructions="You help.",
        memory=memory,
    )
    ledger = UsageLedger("run-window", PRICES)

    answer = chat(agent, ledger)

    assert ADDRESS in answer
    requests = server.chat_requests()
    summaries = [r for r in requests if is_summary(r)]
    turns = [r for r in requests if not is_summary(r)]
    assert summaries and memory.folds == len(summaries)
    assert {r["model"] for r in summaries} == {"mini"}  # the small tier summarizes
    assert {r["model"] for r in turns} == {"maxi"}  # the large tier answers
    assert ADDRESS in summaries[0]["messages"][1]["content"]  # the early turn went to the summary
    # the conversation outgrew the window, yet no prompt sent went over it
    assert (
        estimate_message_tokens(Message(role="user", content=CHATTER) for _ in range(14)) > WINDOW
    )
    assert max(estimate_message_tokens(as_messages(r)) for r in turns) <= WINDOW
    # the early fact reached the last prompt only through the summary, not as a turn
    last = turns[-1]["messages"]
    assert all(ESCROW not in m["content"] for m in last[1:])
    assert (
        ADDRESS in last[0]["content"]
        and "Summary of the earlier conversation" in last[0]["content"]
    )
    # summaries are charged to the agent that needed them, on the small tier's model
    assert ledger.by_model()["mini"].calls == len(summaries)
    assert ledger.by_agent()["assistant"].calls == len(requests)


def test_without_memory_the_same_question_cannot_be_answered(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    agent = Agent(
        "assistant", model=tiered(endpoint).for_tier("large"), tools=[], instructions="You help."
    )
    answer = chat(agent, UsageLedger("run-plain", PRICES), turns=1)
    assert ADDRESS not in answer  # each run is a fresh conversation: memory is what carries it


def test_the_window_counts_the_servers_usage_when_it_reports_one(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    models = tiered(endpoint)
    memory = ShortTermMemory(models.for_tier("small"), window_tokens=400, keep_recent=2)
    agent = Agent("assistant", model=models.for_tier("large"), tools=[], memory=memory)
    # the server says the first prompt cost 390 tokens: far above the estimate
    server.then(Answer("Noted.", usage=(390, 3)))
    asyncio.run(agent.run(f"{ESCROW} Remember it."))
    estimated = estimate_message_tokens(memory.context())
    assert memory.bias > 300 and memory.tokens() == estimated + memory.bias
    asyncio.run(agent.run("Thanks, and one more short note about it."))
    assert memory.folds == 1  # the estimate alone (under 100) would never have folded
    assert ADDRESS in memory.summary


class Calculator(BaseModel):
    """Add two numbers."""

    a: int
    b: int


def add(args: Calculator) -> int:
    """Add two numbers."""
    return args.a + args.b


class AddThenAnswer(ChatModel):
    """Calls ``add`` until it has three results, then answers with what it saw."""

    name = "scripted"

    def __init__(self) -> None:
        self.prompts: list[list[Message]] = []

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        self.prompts.append(messages)
        done = sum(m.role == "tool" for m in messages)
        if len(self.prompts) <= 3:
            n = len(self.prompts)
            call = ToolCall(id=f"c{n}", name="add", arguments={"a": n, "b": 1000})
            return ModelReply(content=CHATTER, tool_calls=[call])
        return ModelReply(content=f"saw {done} results; {messages[0].content}")


def test_within_one_run_pinned_facts_and_the_goal_stay_verbatim_and_tool_results_keep_their_call() -> (
    None
):
    model = AddThenAnswer()
    memory = ShortTermMemory(OfflineModel(), window_tokens=160, keep_recent=2)
    agent = Agent(
        "adder", model=model, tools=[Tool.from_function(add)], instructions="Add.", memory=memory
    )
    fact = "Amounts are in wei; the fee recipient is 0x00000000000000000000000000000000000000fe."
    result = asyncio.run(agent.run("Add things up for trade 99.", facts={"fee": fact}))

    assert memory.folds >= 1
    assert [e.kind for e in result.trace].count("memory") == memory.folds
    for prompt in model.prompts:
        assert fact in prompt[0].content  # pinned: in every prompt, verbatim
        assert "Current goal: Add things up for trade 99." in prompt[0].content
        assert prompt[1].role != "tool"  # a tool result never lost its call
        assert estimate_message_tokens(prompt) <= 160
    assert "1001" in model.prompts[-1][0].content  # folded tool results live on in the summary
    assert "fee" not in memory.facts and "goal" not in memory.facts  # unpinned after the run


def test_facts_reach_the_prompt_without_memory_too() -> None:
    model = AddThenAnswer()
    fact = "The fee recipient is 0x00000000000000000000000000000000000000fe."
    agent = Agent("adder", model=model, tools=[Tool.from_function(add)], instructions="Add.")
    asyncio.run(agent.run("Add things up.", facts={"fee": fact}))
    assert model.prompts[0][0].content == f"Add.\n\nFacts (verbatim):\n- {fact}"


def test_a_window_too_small_for_the_pinned_facts_is_flagged_in_the_trace() -> None:
    memory = ShortTermMemory(OfflineModel(), window_tokens=20, keep_recent=1)
    agent = Agent("a", model=OfflineModel(), tools=[], instructions="You help.", memory=memory)
    asyncio.run(agent.run(CHATTER))
    result = asyncio.run(agent.run(f"{CHATTER} {ESCROW}"))
    [event] = [e for e in result.trace if e.kind == "memory"]
    assert event.data["over_window"] is True and event.data["tokens"] > 20
    assert event.data["folds"] == memory.folds == 1  # it folded what it could first
