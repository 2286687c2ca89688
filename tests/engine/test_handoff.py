"""Handoffs in an Agent's loop and in an executor step: depth guard, spans, usage, resume."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from vouch.agents import (
    Agent,
    AgentBudgetExceeded,
    AgentResult,
    Budget,
    Executor,
    HandoffDepthExceeded,
    Limits,
    Message,
    ModelReply,
    Plan,
    Price,
    PriceTable,
    SQLiteCheckpointStore,
    Step,
    Swarm,
    Tool,
    Turn,
    UnknownAgent,
    UsageLedger,
    agent_worker,
)

from .conftest import FREE, ScriptedModel, call, text

PRICES = PriceTable(prices={"*": Price(input_per_mtok=Decimal(1), output_per_mtok=Decimal(2))})


class Refund(BaseModel):
    order: str
    amount: int


def priced(reply: ModelReply, prompt: int) -> ModelReply:
    return reply.model_copy(update={"prompt_tokens": prompt, "completion_tokens": 1})


def triage() -> tuple[Agent, Agent, list[str]]:
    """Triage hands refunds to the refund desk, which refunds (irreversible) and answers."""
    log: list[str] = []

    async def refund(args: Refund) -> str:
        log.append("refund")
        return f"refunded {args.amount} on {args.order}"

    def desk_script(messages: list[Message]) -> ModelReply:
        log.append(f"desk {len(messages)}")
        if messages[-1].content.startswith("refunded"):
            return priced(text("refund of 40 sent"), 200)
        return priced(call("refund", order="o-7", amount=40), 200)

    def triage_script(messages: list[Message]) -> ModelReply:
        log.append(f"triage {len(messages)}")
        return priced(call("transfer_to_refunds", note="order o-7, 40 USDC"), 100)

    desk = Agent(
        "refunds",
        model=ScriptedModel(desk_script),
        tools=[Tool.from_function(refund, irreversible=True)],
        instructions="You issue refunds.",
        handoff_description="Issues refunds for orders.",
    )
    front = Agent(
        "triage",
        model=ScriptedModel(triage_script),
        tools=[],
        instructions="You route requests.",
        handoffs=[desk],
    )
    return front, desk, log


def test_a_lone_agent_hands_off_and_the_target_finishes_with_the_whole_conversation() -> None:
    front, desk, log = triage()
    ledger = UsageLedger("lone", PRICES)
    result = asyncio.run(front.run("refund order o-7", ledger=ledger))

    assert result.answer == "refund of 40 sent"
    assert (result.agent, result.path) == ("refunds", ["triage", "refunds"])
    assert log == ["triage 2", "desk 4", "refund", "desk 6"]
    # triage's model is offered the desk as a tool; the desk gets its own tools only
    assert isinstance(front.model, ScriptedModel) and isinstance(desk.model, ScriptedModel)
    seen = desk.model.calls[0]
    assert seen[0] == Message(role="system", content="You issue refunds.")
    assert [m.role for m in seen] == ["system", "user", "assistant", "tool"]
    assert seen[1].content == "refund order o-7"
    assert seen[3].content == "transferred to refunds; note: order o-7, 40 USDC"
    kinds = [e.kind for e in result.trace]
    assert kinds == ["model", "transfer", "handoff", "model", "tool", "model"]
    assert result.trace[2].data == {
        "from": "triage",
        "to": "refunds",
        "depth": 1,
        "note": "order o-7, 40 USDC",
    }
    # each model call is charged to the agent that made it
    by_agent = ledger.by_agent()
    assert by_agent["triage"].prompt_tokens == 100
    assert by_agent["refunds"].prompt_tokens == 400


def test_the_transfer_tool_is_offered_with_the_targets_description() -> None:
    front, _, _ = triage()
    specs: list[list[str]] = []

    class Spy(ScriptedModel):
        async def complete(self, messages, tools):  # type: ignore[no-untyped-def]
            specs.append([f"{t.name}: {t.description}" for t in tools])
            return text("I answer myself")

    front.model = Spy([])
    assert asyncio.run(front.run("hi")).path == ["triage"]
    assert specs == [
        [
            "transfer_to_refunds: Hand the conversation to refunds, who continues it: "
            "Issues refunds for orders."
        ]
    ]


def ping_pong(depth: int, max_steps: int = 20) -> tuple[Agent, ScriptedModel, ScriptedModel]:
    ping = ScriptedModel([call("transfer_to_b")])
    pong = ScriptedModel([call("transfer_to_a")])
    b = Agent(
        "b", model=pong, tools=[], handoffs=["a"]
    )  # by name: found among the agents reachable
    a = Agent("a", model=ping, tools=[], max_steps=max_steps, handoffs=[b], max_handoff_depth=depth)
    return a, ping, pong


def test_the_depth_limit_stops_a_lone_ping_pong_before_max_steps_with_the_partial_result() -> None:
    a, ping, pong = ping_pong(depth=3, max_steps=20)
    with pytest.raises(HandoffDepthExceeded) as caught:
        asyncio.run(a.run("go"))
    error = caught.value
    assert (error.depth, error.limit, error.path) == (4, 3, ["a", "b", "a", "b", "a"])
    assert len(ping.calls) + len(pong.calls) == 4  # far from max_steps
    partial = error.partial
    assert isinstance(partial, AgentResult)
    assert (partial.agent, partial.path) == ("b", ["a", "b", "a", "b"])
    assert [e.kind for e in partial.trace].count("handoff") == 3


def test_an_unknown_handoff_target_is_refused_before_any_model_call() -> None:
    model = ScriptedModel([text("never")])
    lost = Agent("a", model=model, tools=[], handoffs=["nobody"])
    with pytest.raises(UnknownAgent, match="handoff target 'nobody'"):
        asyncio.run(lost.run("go"))
    assert model.calls == []


def test_a_transfer_the_agent_was_not_offered_is_an_observation_it_can_correct() -> None:
    model = ScriptedModel([call("transfer_to_zed"), text("fine, I do it")])
    b = Agent("b", model=ScriptedModel([text("b")]), tools=[])
    result = asyncio.run(Agent("a", model=model, tools=[], handoffs=[b]).run("go"))
    assert (result.answer, result.path) == ("fine, I do it", ["a"])
    assert "no tool named 'transfer_to_zed'" in model.calls[1][-1].content
    assert "transfer_to_b" in model.calls[1][-1].content


def test_only_the_first_transfer_of_a_reply_counts() -> None:
    both = ModelReply(
        tool_calls=[call("transfer_to_b").tool_calls[0], call("transfer_to_c").tool_calls[0]]
    )
    b, c = (Agent(n, model=ScriptedModel([text(f"{n} answers")]), tools=[]) for n in "bc")
    result = asyncio.run(
        Agent("a", model=ScriptedModel([both]), tools=[], handoffs=[b, c]).run("go")
    )
    assert (result.answer, result.path) == ("b answers", ["a", "b"])
    assert result.trace[2].data["result"].startswith("error: ignored")


def test_two_different_agents_with_one_name_are_refused() -> None:
    one, other = (Agent("b", model=ScriptedModel([text("")]), tools=[]) for _ in range(2))
    with pytest.raises(ValueError, match="two different agents are named 'b'"):
        Agent("a", model=ScriptedModel([text("")]), tools=[], handoffs=[one, other]).team()


def step_plan(agent: str = "triage") -> Plan:
    return Plan(goal="refund", steps=[Step(id="help", task="refund order o-7", agent=agent)])


def test_in_a_step_a_handoff_chain_finishes_at_the_target_traced_and_charged_to_each() -> None:
    front, desk, log = triage()
    desk.tools = {}  # no approval needed here: the desk answers at once
    assert isinstance(desk.model, ScriptedModel)
    desk.model.script = [priced(text("refund of 40 sent"), 200)]
    store_run = Executor({"triage": agent_worker(front)}, limits=Limits(prices=PRICES))
    outcome = asyncio.run(store_run.run(step_plan(), run_id="h"))
    assert outcome.status == "done" and outcome.outputs == {"help": "refund of 40 sent"}

    trace = store_run.store.load_trace("h")
    assert [s["name"] for s in trace] == [
        "chat scripted",
        "handoff",
        "chat scripted",
        "step help",
        "run",
    ]
    step_span = trace[3]
    handoff = trace[1]
    assert handoff["parentSpanId"] == step_span["spanId"]
    assert handoff["attributes"] == {
        "gen_ai.agent.name": "triage",
        "vouch.handoff.from": "triage",
        "vouch.handoff.to": "refunds",
        "vouch.handoff.depth": 1,
        "vouch.step.id": "help",
    }
    assert trace[2]["attributes"]["gen_ai.agent.name"] == "refunds"
    usage = store_run.store.usage("h")
    assert usage.by_agent["triage"].prompt_tokens == 100
    assert usage.by_agent["refunds"].prompt_tokens == 200


def test_in_a_step_a_target_named_by_name_is_found_in_the_registry() -> None:
    desk = Agent("refunds", model=ScriptedModel([text("done by the desk")]), tools=[])
    front = Agent(
        "triage", model=ScriptedModel([call("transfer_to_refunds")]), tools=[], handoffs=["refunds"]
    )
    executor = Executor(
        {"triage": agent_worker(front), "refunds": agent_worker(desk)}, limits=Limits(prices=FREE)
    )
    outcome = asyncio.run(executor.run(step_plan()))
    assert outcome.outputs == {"help": "done by the desk"}


def test_the_targets_own_budget_stops_the_step() -> None:
    front, desk, _ = triage()
    limits = Limits(prices=PRICES, agent_budgets={"refunds": Budget(tokens=150)})
    executor = Executor({"triage": agent_worker(front)}, limits=limits)
    outcome = asyncio.run(executor.run(step_plan(), run_id="b"))
    assert outcome.status == "stopped"
    assert isinstance(outcome.error, AgentBudgetExceeded) and outcome.error.agent == "refunds"


def test_in_a_step_the_runs_depth_limit_stops_a_ping_pong_keeping_reason_and_partial() -> None:
    a, ping, pong = ping_pong(depth=50)  # the agent's own limit does not apply in a step
    done = Agent("done", model=ScriptedModel([text("first step's output")]), tools=[])
    executor = Executor(
        {"done": agent_worker(done), "a": agent_worker(a)},
        limits=Limits(prices=FREE, max_handoff_depth=3),
        refine_rounds=0,
    )
    plan = Plan(
        goal="g",
        steps=[
            Step(id="first", task="t", agent="done"),
            Step(id="pingpong", task="t", agent="a", depends_on=["first"]),
        ],
    )
    outcome = asyncio.run(executor.run(plan, run_id="pp"))
    assert outcome.status == "stopped" and outcome.reason.startswith("handoff_depth")
    assert isinstance(outcome.error, HandoffDepthExceeded)
    assert outcome.error.path == ["a", "b", "a", "b", "a"]
    assert outcome.outputs == {"first": "first step's output"}  # the partial result
    assert len(ping.calls) + len(pong.calls) == 4
    record = executor.store.load_steps("pp")["pingpong"]
    assert record.status == "stopped"
    spans = executor.store.load_trace("pp")
    assert [s["attributes"]["vouch.handoff.depth"] for s in spans if s["name"] == "handoff"] == [
        1,
        2,
        3,
    ]
    assert executor.store.load_run("pp").reason == outcome.reason


def test_a_paused_handed_off_step_resumes_with_the_target_repeating_no_model_call(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    front, _, log = triage()
    paused = asyncio.run(
        Executor(
            {"triage": agent_worker(front)},
            store=SQLiteCheckpointStore(db),
            limits=Limits(prices=PRICES),
        ).run(step_plan(), run_id="r")
    )
    assert paused.status == "interrupted"  # the desk's refund waits for a human
    assert log == ["triage 2", "desk 4"]
    journal = SQLiteCheckpointStore(db).load_steps("r")["help"].journal
    assert [e["kind"] for e in journal] == ["model", "handoff", "model"]

    front, _, log = triage()  # as if another process
    store = SQLiteCheckpointStore(db)
    executor = Executor({"triage": agent_worker(front)}, store=store, limits=Limits(prices=PRICES))
    executor.decide("r", paused.pending[0].key, approved=True, by="alice")
    outcome = asyncio.run(executor.resume("r"))

    assert outcome.status == "done" and outcome.outputs == {"help": "refund of 40 sent"}
    assert log == ["refund", "desk 6"]  # triage and the desk's first call were replayed
    trace = store.load_trace("r")
    assert [s["name"] for s in trace].count("handoff") == 1
    ids = [s["spanId"] for s in trace]
    assert len(ids) == len(set(ids))
    usage = store.usage("r")  # nothing charged twice
    assert usage.by_agent["triage"].prompt_tokens == 100
    assert usage.by_agent["refunds"].prompt_tokens == 400


def test_a_swarm_handoff_span_has_the_same_shape() -> None:
    async def first(_: object) -> Turn:
        return Turn(writes={"x": 1}, handoff="second")

    async def second(_: object) -> Turn:
        return Turn(done=True, answer="ok")

    outcome = asyncio.run(Swarm({"first": first, "second": second}).run("g", "first"))
    (handoff,) = [s for s in outcome.trace if s["name"] == "handoff"]
    assert handoff["attributes"] == {
        "gen_ai.agent.name": "first",
        "vouch.handoff.from": "first",
        "vouch.handoff.to": "second",
        "vouch.handoff.depth": 1,
    }
