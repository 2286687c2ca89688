"""Model-driven parts of the engine: the model critic's ladder, and a swarm of model agents."""

from __future__ import annotations

import asyncio

import pytest

from vouch.agents import (
    Agent,
    AgentBudgetExceeded,
    Blackboard,
    Budget,
    BudgetExceeded,
    Criterion,
    Executor,
    Hitl,
    Limits,
    LoopDetected,
    Message,
    ModelCritic,
    ModelReply,
    Plan,
    Step,
    Swarm,
    ToolCall,
    Turn,
    UnknownAgent,
    agent_worker,
    current_trace_hash,
    model_swarm_agent,
    trace_hash,
)

from .conftest import FREE, ScriptedModel, text

CRITERIA = [
    Criterion(text="names the counterparty"),
    Criterion(text="says memo", must_contain=["memo"]),
]
PLAN = Plan(
    goal="g",
    steps=[Step(id="memo", task="write the trade memo", agent="writer", criteria=CRITERIA)],
)


def drafts(prefix: str) -> ScriptedModel:
    """A model whose n-th answer is ``{prefix} memo v{n}``."""
    model: ScriptedModel

    def answer(messages: list[Message]) -> ModelReply:
        return text(f"{prefix} memo v{len(model.calls)}")

    model = ScriptedModel(answer)
    return model


def test_model_critic_fails_refines_n_rounds_then_recovery_then_a_human() -> None:
    writer, fixer = drafts("draft"), drafts("fixed")
    critic = ScriptedModel([text("FAIL: does not name the counterparty")])
    executor = Executor(
        {"writer": agent_worker(Agent("writer", model=writer, tools=[]))},
        critic=ModelCritic(critic),
        refine_rounds=2,
        recovery=agent_worker(Agent("fixer", model=fixer, tools=[])),
        hitl=Hitl(review_failures=True),
        limits=Limits(prices=FREE),
    )
    paused = asyncio.run(executor.run(PLAN, run_id="m"))

    assert len(writer.calls) == 3  # the first attempt and 2 refinement rounds
    for n, messages in enumerate(writer.calls):
        notes = messages[-1].content.count("Your last attempt was not accepted: does not name")
        assert notes == n  # each round is told every earlier critique
    assert len(fixer.calls) == 1
    assert "step memo failed 3 times; last problem: does not name the counterparty" in (
        fixer.calls[0][-1].content
    )
    assert len(critic.calls) == 4  # each output was judged by the model
    judged = critic.calls[0][-1].content
    assert "- names the counterparty" in judged and "draft memo v1" in judged
    assert "fixed memo v1" in critic.calls[3][-1].content

    (review,) = paused.pending
    assert paused.status == "interrupted" and review.kind == "review"
    assert review.detail["output"] == "fixed memo v1"
    executor.decide("m", review.key, approved=True, by="carol")
    outcome = asyncio.run(executor.resume("m"))
    assert outcome.status == "done" and outcome.outputs == {"memo": "fixed memo v1"}
    usage = executor.store.usage("m")
    assert set(usage.by_agent) == {"writer", "recovery", "critic"}
    assert usage.by_agent["writer"].calls == 3 and usage.by_agent["critic"].calls == 4
    judged = [
        s
        for s in executor.store.load_trace("m")
        if s["attributes"].get("gen_ai.agent.name") == "critic"
    ]
    assert [s["name"] for s in judged] == ["chat scripted"] * 4  # the critic's calls are spans


def test_a_human_rejecting_a_failed_step_ends_the_run_as_rejected() -> None:
    writer = drafts("draft")
    executor = Executor(
        {"writer": agent_worker(Agent("writer", model=writer, tools=[]))},
        critic=ModelCritic(ScriptedModel([text("FAIL: vague")])),
        refine_rounds=1,
        hitl=Hitl(review_failures=True),
        limits=Limits(prices=FREE),
    )
    paused = asyncio.run(executor.run(PLAN, run_id="no"))
    (review,) = paused.pending
    assert paused.status == "interrupted" and review.kind == "review"
    assert review.detail == {"reason": "vague", "output": "draft memo v2"}
    executor.decide("no", review.key, approved=False, note="not good enough", by="carol")
    outcome = asyncio.run(executor.resume("no"))
    assert outcome.status == "rejected" and outcome.outputs == {}
    assert "not good enough" in outcome.reason and len(writer.calls) == 2  # nothing ran again
    record = executor.store.load_run("no")
    assert record.status == "rejected" and record.error == "ActionRejected"
    assert executor.store.load_steps("no")["memo"].status == "failed"


def test_model_critic_passes_a_later_round_and_rules_go_first() -> None:
    writer = ScriptedModel([text("draft"), text("draft memo"), text("memo for ACME")])
    critic = ScriptedModel([text("FAIL - no counterparty"), text("PASS")])
    executor = Executor(
        {"writer": agent_worker(Agent("writer", model=writer, tools=[]))},
        critic=ModelCritic(critic),
        refine_rounds=2,
        limits=Limits(prices=FREE),
    )
    outcome = asyncio.run(executor.run(PLAN))
    assert outcome.status == "done" and outcome.outputs == {"memo": "memo for ACME"}
    # "draft" missed the rule (no model asked); "draft memo" failed the model; then PASS
    assert len(critic.calls) == 2 and "draft memo" in critic.calls[0][-1].content
    assert "says memo: missing ['memo']" in writer.calls[1][-1].content
    assert "no counterparty" in writer.calls[2][-1].content


def test_a_critic_without_a_verdict_fails_the_output() -> None:
    verdict = asyncio.run(
        ModelCritic(ScriptedModel([text("looks fine to me")])).review(PLAN.steps[0], "a memo")
    )
    assert not verdict.ok and verdict.critique == "critic gave no verdict: looks fine to me"


def tools(*calls: tuple[str, dict[str, str]]) -> ModelReply:
    return ModelReply(
        tool_calls=[ToolCall(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls)]
    )


def test_a_swarm_of_model_agents_hands_off_over_the_blackboard() -> None:
    scout = ScriptedModel(
        [tools(("write", {"key": "price", "value": "2993"}), ("handoff", {"to": "analyst"}))]
    )

    def judge(messages: list[Message]) -> ModelReply:
        if '"price": "2993"' not in messages[-1].content:
            return tools(("handoff", {"to": "scout"}))
        return tools(
            ("write", {"key": "verdict", "value": "inside"}), ("handoff", {"to": "closer"})
        )

    analyst = ScriptedModel(judge)
    closer = ScriptedModel(
        lambda m: text("settle at 2993" if '"verdict": "inside"' in m[-1].content else "?")
    )
    swarm = Swarm(
        {
            "scout": model_swarm_agent("scout", scout, "Find the price.", ["analyst"]),
            "analyst": model_swarm_agent("analyst", analyst, "Judge it.", ["scout", "closer"]),
            "closer": model_swarm_agent("closer", closer, "Close.", []),
        },
        Limits(prices=FREE),
    )
    outcome = asyncio.run(swarm.run("is 2993 inside 2500..3500?", entry="analyst"))
    assert outcome.status == "done" and outcome.answer == "settle at 2993"
    assert [e["agent"] for e in outcome.board.log] == ["analyst", "scout", "analyst", "closer"]
    assert outcome.board.entries == {"price": "2993", "verdict": "inside"}
    assert len(analyst.calls) == 2 and len(scout.calls) == 1 and len(closer.calls) == 1
    system, user = analyst.calls[0]
    assert (
        "You are analyst. Judge it." in system.content and "['scout', 'closer']" in system.content
    )
    assert user.content.startswith("Goal: is 2993 inside") and "Blackboard: {}" in user.content
    assert '"price": "2993"' in analyst.calls[1][-1].content  # read what the scout wrote
    # every turn, model call, handoff and the final decision is a span of the swarm's trace
    names = [(s["name"], s["attributes"].get("vouch.handoff.to")) for s in outcome.trace]
    assert names == [
        ("chat scripted", None),
        ("turn analyst", None),
        ("handoff", "scout"),
        ("chat scripted", None),
        ("turn scout", None),
        ("handoff", "analyst"),
        ("chat scripted", None),
        ("turn analyst", None),
        ("handoff", "closer"),
        ("chat scripted", None),
        ("turn closer", None),
        ("decision finish", None),
        ("swarm", None),
    ]
    assert outcome.trace_hash == trace_hash(outcome.trace)
    chats = [s for s in outcome.trace if s["name"] == "chat scripted"]
    assert [c["attributes"]["gen_ai.agent.name"] for c in chats] == [
        "analyst",
        "scout",
        "analyst",
        "closer",
    ]
    assert [u.agent for u in outcome.usage] == ["analyst", "scout", "analyst", "closer"]
    assert all(u.prompt_tokens > 0 and u.kind == "model" for u in outcome.usage)  # estimated


def test_a_swarm_stops_at_the_run_and_the_agent_budgets() -> None:
    def chatty(tokens: int) -> ScriptedModel:
        reply = tools(("write", {"key": "n", "value": "x"}), ("handoff", {"to": "b"}))
        return ScriptedModel([reply.model_copy(update={"prompt_tokens": tokens})])

    def swarm(limits: Limits) -> Swarm:
        back = tools(("handoff", {"to": "a"})).model_copy(update={"prompt_tokens": 10})
        return Swarm(
            {
                "a": model_swarm_agent("a", chatty(100), "", ["b"]),
                "b": model_swarm_agent("b", ScriptedModel([back]), "", ["a"]),
            },
            limits,
        )

    agent_cap = Limits(prices=FREE, agent_budgets={"a": Budget(tokens=300)}, loop_repeats=50)
    outcome = asyncio.run(swarm(agent_cap).run("g", entry="a"))
    assert outcome.status == "stopped" and isinstance(outcome.error, AgentBudgetExceeded)
    # a's prompt (with the swarm tools' schemas) is estimated at ~165 tokens: its worst
    # case, prompt + 10 max_tokens, fits twice; the third would reach 200 spent + ~175 > 300
    assert outcome.error.agent == "a" and outcome.error.before is not None
    assert "not sent" in str(outcome.error) and outcome.error.spent_tokens > 300
    assert sum(u.prompt_tokens for u in outcome.usage if u.agent == "a") == 200
    assert outcome.reason.startswith("budget:") and [e["agent"] for e in outcome.board.log] == [
        "a",
        "b",
        "a",
        "b",
    ]
    run_cap = Limits(prices=FREE, budget=Budget(tokens=300), loop_repeats=50)
    outcome = asyncio.run(swarm(run_cap).run("g", entry="a"))
    # a 100, b 10, a 100; then b's worst case (210 + ~175) does not fit: never sent
    assert isinstance(outcome.error, BudgetExceeded) and outcome.error.before is not None
    assert sum(u.prompt_tokens for u in outcome.usage) == 210
    assert outcome.trace[-1]["name"] == "swarm" and outcome.trace[-1]["status"]["code"] == "ERROR"


def test_model_agents_passing_work_back_and_forth_are_stopped() -> None:
    ping = ScriptedModel([tools(("handoff", {"to": "b"}))])
    pong = ScriptedModel([tools(("handoff", {"to": "a"}))])
    swarm = Swarm(
        {
            "a": model_swarm_agent("a", ping, "", ["b"]),
            "b": model_swarm_agent("b", pong, "", ["a"]),
        },
        Limits(max_handoff_depth=50, prices=FREE),
    )
    outcome = asyncio.run(swarm.run("g", entry="a"))
    assert outcome.status == "stopped" and isinstance(outcome.error, LoopDetected)
    assert len(ping.calls) + len(pong.calls) < 10


def test_a_handoff_to_an_unknown_peer_is_an_error_naming_it() -> None:
    lost = ScriptedModel([tools(("handoff", {"to": "nobody"}))])
    swarm = Swarm({"a": model_swarm_agent("a", lost, "", ["b"])}, Limits(prices=FREE))
    with pytest.raises(UnknownAgent, match="'nobody'.*\\['a'\\]"):
        asyncio.run(swarm.run("g", entry="a"))
    with pytest.raises(UnknownAgent, match="'b'"):
        asyncio.run(swarm.run("g", entry="b"))
    assert len(lost.calls) == 1


def test_a_swarm_binds_its_trace_while_its_agents_act() -> None:
    seen: list[str | None] = []

    async def first(board: Blackboard) -> Turn:
        seen.append(current_trace_hash())
        return Turn(writes={"x": 1}, handoff="second")

    async def second(board: Blackboard) -> Turn:
        seen.append(current_trace_hash())
        return Turn(done=True, answer="ok")

    outcome = asyncio.run(Swarm({"first": first, "second": second}).run("g", entry="first"))
    assert current_trace_hash() is None and outcome.status == "done"
    assert seen[0] == trace_hash([])  # nothing had closed yet
    assert seen[1] not in (None, seen[0], outcome.trace_hash)  # the first turn and the handoff


def test_the_critics_calls_count_against_its_own_budget() -> None:
    writer = ScriptedModel([text("draft memo")])
    critic = ScriptedModel([text("FAIL: vague", tokens=100)])
    executor = Executor(
        {"writer": agent_worker(Agent("writer", model=writer, tools=[]))},
        critic=ModelCritic(critic),
        refine_rounds=5,
        limits=Limits(prices=FREE, agent_budgets={"critic": Budget(tokens=150)}),
    )
    outcome = asyncio.run(executor.run(PLAN))
    assert isinstance(outcome.error, AgentBudgetExceeded) and outcome.error.agent == "critic"
    # the second call's worst case (100 spent + its prompt + 10) does not fit: never sent
    assert len(critic.calls) == 1 and outcome.status == "stopped"
    assert outcome.error.before is not None
