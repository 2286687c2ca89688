"""A tool's error inside an engine step: the model hears it, and the executor's failure ladder sees it.

By default a failing tool is an observation: the model is told, and whatever it
answers is what the step's critic judges, so the error reaches the refine
round's feedback through the critique. A tool may instead name errors that
stop its step (``Tool.reraise``): the attempt fails with the error itself as
the critique, and the ladder (refine, recovery, human, failure) climbs on it.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from vouch.agents import (
    Agent,
    ChatModel,
    Criterion,
    Executor,
    Limits,
    MemoryCheckpointStore,
    Message,
    ModelCritic,
    ModelReply,
    Plan,
    Price,
    PriceTable,
    Step,
    StepContext,
    Tool,
    ToolCall,
    ToolSpec,
    agent_worker,
)

FREE = Limits(prices=PriceTable(prices={"*": Price(input_per_mtok=0, output_per_mtok=0)}))
REFUSED = "RPC at http://127.0.0.1:8545 refused the connection"


class Pay(BaseModel):
    """Pay an amount."""

    amount: int


class Payer(ChatModel):
    """Calls ``pay`` once per attempt, then answers with what the tool said."""

    name = "payer-model"

    def __init__(self) -> None:
        self.goals: list[str] = []

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        if messages[-1].role == "tool":
            return ModelReply(content=f"observed: {messages[-1].content}")
        self.goals.append(messages[-1].content)
        return ModelReply(tool_calls=[ToolCall(id="p", name="pay", arguments={"amount": 5})])


class ToolErrorCritic(ChatModel):
    """Fails an output that reports a tool error, quoting it; passes anything else."""

    name = "critic-model"

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        output = messages[-1].content.split("Output:\n", 1)[1]
        self.seen.append(output)
        if "error: tool" in output:
            return ModelReply(content=f"FAIL: the payment did not go through ({output})")
        return ModelReply(content="PASS")


def flaky_pay(failures: int, reraise: tuple[type[Exception], ...] = ()) -> Tool:
    calls: list[int] = []

    async def pay(args: Pay) -> str:
        calls.append(args.amount)
        if len(calls) <= failures:
            raise ConnectionError(REFUSED)
        return f"paid {args.amount}"

    return Tool(name="pay", description="Pay.", args_model=Pay, fn=pay, reraise=reraise)


def plan() -> Plan:
    criteria = [Criterion(text="the payment went through")]
    return Plan(goal="pay", steps=[Step(id="pay", task="pay 5", agent="payer", criteria=criteria)])


def test_a_tool_error_is_heard_by_the_model_and_its_critique_drives_the_refine_round() -> None:
    model, critic = Payer(), ToolErrorCritic()
    agent = Agent("payer", model=model, tools=[flaky_pay(failures=1)])
    store = MemoryCheckpointStore()
    executor = Executor(
        {"payer": agent_worker(agent)},
        store=store,
        limits=FREE,
        critic=ModelCritic(critic),
        refine_rounds=1,
    )
    outcome = asyncio.run(executor.run(plan()))

    assert outcome.status == "done", outcome.reason
    assert outcome.outputs["pay"] == "observed: paid 5"
    # attempt 1: no crash, the model heard the error and said so; the critic saw it and failed it
    assert critic.seen[0] == f"observed: error: tool pay failed: ConnectionError: {REFUSED}"
    assert "Your last attempt was not accepted: the payment did not go through" in model.goals[1]
    assert REFUSED in model.goals[1]  # the refine round was told what the tool said
    # the tool call is an ERROR span in the run's trace, with the error
    tools = [s for s in store.load_trace(outcome.run_id) if s["name"] == "tool pay"]
    assert [s["status"]["code"] for s in tools] == ["ERROR", "OK"]
    assert REFUSED in tools[0]["status"]["message"]


def test_a_tool_error_the_tool_reraises_fails_the_attempt_and_climbs_the_ladder() -> None:
    recovered: list[list[str]] = []

    async def recovery(ctx: StepContext) -> str:
        recovered.append(ctx.feedback)
        return "recovery: payment queued for a human"

    model = Payer()
    agent = Agent("payer", model=model, tools=[flaky_pay(failures=9, reraise=(ConnectionError,))])
    executor = Executor(
        {"payer": agent_worker(agent)}, limits=FREE, refine_rounds=1, recovery=recovery
    )
    outcome = asyncio.run(executor.run(plan()))

    assert outcome.status == "done", outcome.reason
    assert outcome.outputs["pay"] == "recovery: payment queued for a human"
    error = f"ConnectionError: {REFUSED}"
    assert f"Your last attempt was not accepted: {error}" in model.goals[1]  # refine round
    [feedback] = recovered
    assert feedback[:2] == [error, error] and error in feedback[-1]  # recovery: failed 2 times


def test_without_a_way_out_the_tool_error_is_the_reason_the_run_failed() -> None:
    agent = Agent("payer", model=Payer(), tools=[flaky_pay(failures=9, reraise=(ConnectionError,))])
    executor = Executor({"payer": agent_worker(agent)}, limits=FREE, refine_rounds=0)
    outcome = asyncio.run(executor.run(plan()))
    assert outcome.status == "failed" and REFUSED in outcome.reason
