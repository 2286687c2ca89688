from __future__ import annotations

import asyncio
from decimal import Decimal

from pydantic import BaseModel

from vouch.agents import (
    Agent,
    AgentBudgetExceeded,
    Blackboard,
    Budget,
    BudgetExceeded,
    Executor,
    HandoffDepthExceeded,
    Limits,
    LoopDetected,
    Message,
    ModelReply,
    Plan,
    Price,
    PriceTable,
    RunStepLimit,
    RunTimedOut,
    Step,
    StepContext,
    Swarm,
    Tool,
    Turn,
    agent_worker,
)

from .conftest import ScriptedModel, call, text


class Query(BaseModel):
    q: str


async def search(args: Query) -> str:
    return "nothing new"


def looping_agent(max_steps: int = 50) -> Agent:
    model = ScriptedModel([call("search", q="same thing")])  # forever the same call
    return Agent("looper", model=model, tools=[Tool.from_function(search)], max_steps=max_steps)


def one_step(agent: str = "looper") -> Plan:
    return Plan(goal="g", steps=[Step(id="s", task="find it", agent=agent)])


def test_runaway_loop_is_stopped_by_loop_detection_before_max_steps() -> None:
    executor = Executor(
        {"looper": agent_worker(looping_agent())}, limits=Limits(max_steps=40, prices=FREE)
    )
    outcome = asyncio.run(executor.run(one_step()))
    assert outcome.status == "stopped"
    assert isinstance(outcome.error, LoopDetected) and outcome.error.kind == "repeat"
    assert "looper -> search" in outcome.reason and outcome.reason.startswith("loop:")
    record = executor.store.load_run(outcome.run_id)
    assert record.status == "stopped" and record.error == "LoopDetected"
    assert record.steps_executed < 10  # far from max_steps=40


def test_max_steps_stops_the_run_and_keeps_partial_results() -> None:
    async def work(ctx: StepContext) -> str:
        return ctx.step.id

    steps = [
        Step(id=f"s{i}", task="t", agent="w", depends_on=[f"s{i - 1}"] if i else [])
        for i in range(10)
    ]
    executor = Executor({"w": work}, limits=Limits(max_steps=4))
    outcome = asyncio.run(executor.run(Plan(goal="g", steps=steps), run_id="cut"))
    assert outcome.status == "stopped" and isinstance(outcome.error, RunStepLimit)
    assert outcome.outputs == {f"s{i}": f"s{i}" for i in range(4)}
    # the partial result and the reason are in the checkpoint too, for another process
    record = executor.store.load_run("cut")
    assert (record.status, record.error, record.reason) == (
        "stopped",
        "RunStepLimit",
        outcome.reason,
    )
    assert outcome.reason.startswith("max_steps: run stopped after 4 steps")
    done = {k: r.output for k, r in executor.store.load_steps("cut").items() if r.status == "done"}
    assert done == outcome.outputs


def test_an_agent_step_that_observes_nothing_new_is_a_loop_before_max_steps() -> None:
    tries = 0

    def script(messages: list[Message]) -> ModelReply:
        nonlocal tries
        tries += 1
        return call("search", q=f"attempt {tries}")  # new arguments every time: no repeat

    agent = Agent(
        "seeker", model=ScriptedModel(script), tools=[Tool.from_function(search)], max_steps=50
    )
    executor = Executor({"seeker": agent_worker(agent)}, limits=Limits(max_steps=40, prices=FREE))
    outcome = asyncio.run(executor.run(one_step("seeker")))
    assert outcome.status == "stopped"
    assert isinstance(outcome.error, LoopDetected) and outcome.error.kind == "no-progress"
    assert "state unchanged in step s/1, last by seeker" in outcome.reason
    assert tries == 7  # one call saw something new, then 6 in a row (stale_limit) saw nothing
    assert executor.store.load_run(outcome.run_id).steps_executed < 40


def test_an_agent_step_whose_calls_keep_observing_new_results_is_not_a_loop() -> None:
    tries = 0

    async def fetch(args: Query) -> str:
        return f"page for {args.q}"

    def script(messages: list[Message]) -> ModelReply:
        nonlocal tries
        tries += 1
        return call("fetch", q=f"p{tries}") if tries <= 10 else text("read 10 pages")

    agent = Agent(
        "reader", model=ScriptedModel(script), tools=[Tool.from_function(fetch)], max_steps=20
    )
    executor = Executor({"reader": agent_worker(agent)}, limits=Limits(prices=FREE))
    outcome = asyncio.run(executor.run(one_step("reader")))
    assert outcome.status == "done" and outcome.outputs == {"s": "read 10 pages"}


def test_ttl_stops_a_hung_step() -> None:
    async def fast(ctx: StepContext) -> str:
        return "ok"

    async def hang(ctx: StepContext) -> str:
        await asyncio.sleep(30)
        return "never"

    plan = Plan(
        goal="g",
        steps=[
            Step(id="a", task="t", agent="fast"),
            Step(id="b", task="t", agent="hang", depends_on=["a"]),
        ],
    )
    executor = Executor({"fast": fast, "hang": hang}, limits=Limits(ttl_seconds=0.3))
    outcome = asyncio.run(executor.run(plan))
    assert outcome.status == "stopped" and isinstance(outcome.error, RunTimedOut)
    assert outcome.outputs == {"a": "ok"} and outcome.reason.startswith("ttl:")


FREE = PriceTable(prices={"*": Price(input_per_mtok=Decimal(0), output_per_mtok=Decimal(0))})


def talker(tokens: int) -> Agent:
    return Agent("talker", model=ScriptedModel([text("a long answer", tokens=tokens)]), tools=[])


def test_run_budget_exhaustion_stops_with_budget_exceeded() -> None:
    steps = [
        Step(id=f"s{i}", task="t", agent="talker", depends_on=[f"s{i - 1}"] if i else [])
        for i in range(5)
    ]
    limits = Limits(budget=Budget(tokens=250), prices=FREE)
    outcome = asyncio.run(
        Executor({"talker": agent_worker(talker(100))}, limits=limits).run(
            Plan(goal="g", steps=steps)
        )
    )
    assert outcome.status == "stopped" and isinstance(outcome.error, BudgetExceeded)
    assert outcome.error.spent_tokens == 300 and outcome.error.budget_tokens == 250
    assert list(outcome.outputs) == ["s0", "s1"]


def test_agent_budget_stops_the_agent_that_overspends() -> None:
    limits = Limits(agent_budgets={"talker": Budget(tokens=150)}, prices=FREE)
    steps = [
        Step(id=f"s{i}", task="t", agent="talker", depends_on=[f"s{i - 1}"] if i else [])
        for i in range(3)
    ]
    outcome = asyncio.run(
        Executor({"talker": agent_worker(talker(100))}, limits=limits).run(
            Plan(goal="g", steps=steps)
        )
    )
    assert isinstance(outcome.error, AgentBudgetExceeded) and outcome.error.agent == "talker"
    assert list(outcome.outputs) == ["s0"]


def test_agent_usd_budget_stops_that_agent_and_not_the_others() -> None:
    async def paid(ctx: StepContext) -> str:
        ctx.charge_usd("api", Decimal("0.4"))
        return ctx.agent

    agents = ["payer", "other", "other", "payer"]
    steps = [
        Step(id=f"s{i}", task="t", agent=a, depends_on=[f"s{i - 1}"] if i else [])
        for i, a in enumerate(agents)
    ]
    limits = Limits(agent_budgets={"payer": Budget(usd=Decimal("0.5"))})
    executor = Executor({"payer": paid, "other": paid}, limits=limits)
    outcome = asyncio.run(executor.run(Plan(goal="g", steps=steps)))
    assert outcome.status == "stopped" and isinstance(outcome.error, AgentBudgetExceeded)
    assert outcome.error.agent == "payer" and outcome.error.spent_usd == Decimal("0.8")
    assert outcome.error.budget_usd == Decimal("0.5")
    assert list(outcome.outputs) == ["s0", "s1", "s2"]  # "other" spent 0.8 too, unlimited


def test_usd_budget_counts_paid_tools() -> None:
    async def paid(ctx: StepContext) -> str:
        ctx.charge_usd("api", Decimal("0.4"))
        return "ok"

    steps = [
        Step(id=f"s{i}", task="t", agent="w", depends_on=[f"s{i - 1}"] if i else [])
        for i in range(4)
    ]
    outcome = asyncio.run(
        Executor({"w": paid}, limits=Limits(budget=Budget(usd=Decimal(1)))).run(
            Plan(goal="g", steps=steps)
        )
    )
    assert isinstance(outcome.error, BudgetExceeded) and outcome.error.spent_usd == Decimal("1.2")


def test_swarm_handoff_depth_is_bounded() -> None:
    async def passer(board: Blackboard) -> Turn:
        n = len(board.log)
        return Turn(
            handoff="b" if n % 2 == 0 else "a", writes={"note": f"turn {n}"} if n == 0 else {}
        )

    swarm = Swarm(
        {"a": passer, "b": passer},
        Limits(max_handoff_depth=3, stale_limit=50, loop_repeats=50, loop_window=60),
    )
    result = asyncio.run(swarm.run("g", entry="a"))
    assert result.status == "stopped" and isinstance(result.error, HandoffDepthExceeded)
    assert result.error.depth == 4 and result.board.entries == {"note": "turn 0"}


def test_swarm_state_not_changing_is_a_loop() -> None:
    async def stuck(board: Blackboard) -> Turn:
        return Turn(handoff="a", writes={"x": 1})

    swarm = Swarm({"a": stuck, "b": stuck}, Limits(stale_limit=4, loop_repeats=50, loop_window=60))
    result = asyncio.run(swarm.run("g", entry="a"))
    assert isinstance(result.error, LoopDetected) and result.error.kind == "no-progress"
    assert result.reason.startswith("loop:")


# --- loops are scoped to a step; sync tools and workers run in a thread pool --------------


def price_agent(name: str = "analyst", calls: int = 1) -> Agent:
    """An agent that, in each step, calls price(ETH/USD) ``calls`` times, then answers."""

    def reply(messages: list[Message]) -> ModelReply:
        seen = sum(m.role == "tool" for m in messages)  # this step's conversation only
        return call("price", pair="ETH/USD") if seen < calls else text("3000")

    return Agent(name, model=ScriptedModel(reply), tools=[price_tool()], max_steps=20)


def price_tool(values: list[float] | None = None) -> Tool:
    from vouch.agents import tool

    feed = iter(values) if values is not None else None

    @tool
    def price(pair: str) -> float:
        """The price of a pair."""
        return next(feed) if feed is not None else 3000.0

    return price


def test_independent_parallel_steps_making_the_same_call_are_no_loop() -> None:
    steps = [Step(id=f"s{i}", task="price ETH", agent="analyst") for i in range(3)]
    executor = Executor({"analyst": agent_worker(price_agent())}, limits=Limits(prices=FREE))
    outcome = asyncio.run(executor.run(Plan(goal="g", steps=steps)))
    assert outcome.status == "done", outcome.reason
    assert outcome.outputs == {"s0": "3000", "s1": "3000", "s2": "3000"}
    tools = [s for s in executor.store.load_trace(outcome.run_id) if s["name"] == "tool price"]
    assert len(tools) == 3  # each step made the call once


def test_one_step_repeating_a_call_that_brings_nothing_new_is_a_loop() -> None:
    executor = Executor({"analyst": agent_worker(price_agent(calls=5))}, limits=Limits(prices=FREE))
    outcome = asyncio.run(executor.run(one_step("analyst")))
    assert isinstance(outcome.error, LoopDetected) and outcome.error.kind == "repeat"
    assert 'analyst -> price({"pair": "ETH/USD"}) in step s/1, observing nothing new' in (
        outcome.reason
    )


def test_polling_a_value_that_changes_is_no_loop() -> None:
    replies = [call("price", pair="ETH/USD") for _ in range(5)] + [text("moved")]
    agent = Agent(
        "poller",
        model=ScriptedModel(replies),
        tools=[price_tool([1.0, 2.0, 3.0, 4.0, 5.0])],
        max_steps=20,
    )
    executor = Executor({"poller": agent_worker(agent)}, limits=Limits(prices=FREE))
    outcome = asyncio.run(executor.run(one_step("poller")))
    assert outcome.status == "done" and outcome.outputs == {"s": "moved"}


def test_parallel_sync_tools_overlap_in_the_thread_pool() -> None:
    import time

    from vouch.agents import tool

    @tool
    def slow(pair: str) -> str:
        """Sleep half a second (a blocking client)."""
        time.sleep(0.5)
        return pair

    def agent(name: str) -> Agent:
        model = ScriptedModel([call("slow", pair=name), text(f"{name} done")])
        return Agent(name, model=model, tools=[slow])

    names = ["a", "b", "c", "d"]
    executor = Executor({n: agent_worker(agent(n)) for n in names}, limits=Limits(prices=FREE))
    plan = Plan(goal="g", steps=[Step(id=n, task="t", agent=n) for n in names])
    started = time.monotonic()
    outcome = asyncio.run(executor.run(plan))
    took = time.monotonic() - started
    assert outcome.status == "done" and took < 1.5, took  # inline on the loop: 2 s or more


def test_the_time_limit_fires_while_a_sync_worker_blocks() -> None:
    import time

    def blocking(ctx: StepContext) -> str:
        time.sleep(3)
        return "too late"

    executor = Executor({"w": blocking}, limits=Limits(ttl_seconds=0.3, prices=FREE))
    started = time.monotonic()
    outcome = asyncio.run(executor.run(one_step("w")))
    took = time.monotonic() - started
    assert outcome.status == "stopped" and isinstance(outcome.error, RunTimedOut)
    assert took < 2.0, took  # the run did not wait for the blocked thread
