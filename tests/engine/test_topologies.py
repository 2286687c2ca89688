"""The three topologies (one example each), registry routing and tracing."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from vouch.agents import (
    Agent,
    AgentCard,
    Embedder,
    Executor,
    Limits,
    MemoryCheckpointStore,
    Message,
    ModelReply,
    Plan,
    Registry,
    Step,
    StepContext,
    Tool,
    Tracer,
    agent_worker,
    current_step,
)

from ..scripts import ROOT, load_script
from .conftest import FREE, ScriptedModel, call, echo, text

EXAMPLES = ROOT / "examples"


def example(name: str) -> ModuleType:
    return load_script(EXAMPLES / f"{name}.py", f"example_{name}")


def test_supervisor_example_plans_delegates_by_capability_and_synthesizes() -> None:
    module = example("supervisor")
    stores: list[Any] = []
    real = module.Executor

    def keeping_store(*args: Any, **kwargs: Any) -> Any:
        executor = real(*args, **kwargs)
        stores.append(executor.store)
        return executor

    module.Executor = keeping_store
    result = asyncio.run(module.main())
    assert result.outcome.status == "done"
    assert result.outcome.outputs["decide"] == "settle"
    assert result.answer.startswith("Manager: liquidity: liquidity ok")
    # the manager planned inside the run: a plan span holding its chat span
    spans = stores[0].load_trace(result.outcome.run_id)
    plan = next(s for s in spans if s["name"] == "plan")
    assert any(s["name"].startswith("chat") and s["parentSpanId"] == plan["spanId"] for s in spans)


def test_chain_example_passes_each_output_to_the_next() -> None:
    result = asyncio.run(example("chain").main())
    assert result.outcome.status == "done"
    assert result.answer == "FINAL: the DON attested ETH/USD median 2993.95 from 3 nodes"


def test_swarm_example_hands_off_over_the_blackboard() -> None:
    outcome = asyncio.run(example("swarm").main())
    assert outcome.status == "done" and outcome.answer == "price 2993 is inside bounds"
    assert [e["agent"] for e in outcome.board.log] == ["analyst", "scout", "analyst", "closer"]


def test_routing_by_capability_then_description_similarity() -> None:
    reg = Registry()
    reg.add(
        AgentCard(
            name="poet", description="writes poems and creative prose", capabilities=["write"]
        ),
        echo,
    )
    reg.add(
        AgentCard(
            name="coder",
            description="python code, math, computation",
            capabilities=["write", "math"],
        ),
        echo,
    )
    reg.add(AgentCard(name="clerk", description="files forms"), echo)
    by_sim = asyncio.run(
        reg.route(Step(id="s", task="compute the math of python code", capability="write"))
    )
    assert (
        by_sim.agent == "coder"
        and by_sim.by == "similarity"
        and by_sim.candidates == ["poet", "coder"]
    )
    assert asyncio.run(reg.route(Step(id="s", task="x", capability="math"))).agent == "coder"
    assert asyncio.run(reg.route(Step(id="s", task="write a poem", agent="clerk"))).by == "name"
    poem = asyncio.run(reg.route(Step(id="s", task="write creative poems", capability="write")))
    assert poem.agent == "poet"


class ConceptEmbedder(Embedder):
    """A toy semantic embedder: words mapped to concepts, so synonyms land together."""

    name = "concepts"
    dimensions = 2
    CONCEPTS = {"sell": 0, "sells": 0, "dispose": 0, "liquidate": 0, "buy": 1, "buys": 1}
    CONCEPTS |= {"acquire": 1, "accumulate": 1}

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.texts += texts
        vectors = []
        for t in texts:
            v = [0.0, 0.0]
            for word in t.lower().split():
                if word in self.CONCEPTS:
                    v[self.CONCEPTS[word]] += 1.0
            vectors.append(v)
        return vectors


def test_routing_by_similarity_uses_the_registrys_embedder() -> None:
    embedder = ConceptEmbedder()
    reg = Registry(embedder=embedder)
    reg.add(AgentCard(name="seller", description="sells assets", capabilities=["trade"]), echo)
    reg.add(AgentCard(name="buyer", description="buys assets", capabilities=["trade"]), echo)
    dispose = asyncio.run(reg.route(Step(id="s", task="dispose of the WETH", capability="trade")))
    assert dispose.agent == "seller" and dispose.by == "similarity" and dispose.score == 1.0
    more = asyncio.run(reg.route(Step(id="s", task="accumulate more WETH", capability="trade")))
    assert more.agent == "buyer"
    # each description was embedded once, then each task
    assert embedder.texts == [
        "sells assets trade",
        "buys assets trade",
        "dispose of the WETH",
        "accumulate more WETH",
    ]


def test_trace_spans_use_otel_names_and_the_hash_binds_the_reasoning() -> None:
    async def work(ctx: StepContext) -> str:
        with ctx.tracer.span("tool lookup", **{"gen_ai.tool.name": "lookup"}):
            return ctx.step.task

    def run(task: str) -> tuple[str, list[str]]:
        plan = Plan(
            goal="g",
            steps=[
                Step(id="a", task=task, agent="w"),
                Step(id="b", task="t", agent="w", depends_on=["a"]),
            ],
        )
        executor = Executor({"w": work})
        outcome = asyncio.run(executor.run(plan, run_id="fixed"))
        steps = executor.store.load_steps("fixed")
        return outcome.trace_hash, [s["name"] for s in steps["a"].spans]

    hash1, names = run("t")
    assert names == ["tool lookup", "step a"]
    assert run("t")[0] == hash1  # same reasoning, same hash
    assert run("other")[0] != hash1

    tracer = Tracer("r")
    with tracer.span("step x", **{"vouch.step.id": "x"}):
        tracer.event("handoff", **{"vouch.handoff.to": "y"})
    child, parent = tracer.spans
    assert child.parent_id == parent.span_id and parent.to_otel()["status"]["code"] == "OK"
    assert child.to_otel()["attributes"] == {"vouch.handoff.to": "y"}


class Wait(BaseModel):
    ms: int


def test_the_trace_hash_does_not_depend_on_how_concurrent_steps_interleave() -> None:
    def run(delays: dict[str, float]) -> str:
        async def wait(args: Wait) -> str:
            await asyncio.sleep(delays[current_step().step.id])  # type: ignore[union-attr]
            return "waited"

        def script(messages: list[Message]) -> ModelReply:
            return text("done") if messages[-1].role == "tool" else call("wait", ms=1)

        agent = Agent("waiter", model=ScriptedModel(script), tools=[Tool.from_function(wait)])
        plan = Plan(goal="g", steps=[Step(id=s, task="t", agent="w") for s in delays])
        executor = Executor({"w": agent_worker(agent)}, limits=Limits(prices=FREE))
        return asyncio.run(executor.run(plan, run_id="same")).trace_hash

    first = run({"a": 0.0, "b": 0.05})
    assert run({"a": 0.05, "b": 0.0}) == first  # the steps finished in the other order
    assert run({"a": 0.0, "b": 0.0, "c": 0.0}) != first


class Note(BaseModel):
    text: str


def test_an_agent_with_memory_keeps_it_as_a_step_and_its_summaries_are_spans() -> None:
    from vouch.agents import ShortTermMemory

    facts = [f"fact {i}: " + "lorem ipsum dolor sit amet " * 20 for i in range(8)]

    told: list[str] = []

    def script(messages: list[Message]) -> ModelReply:  # older turns get folded: count here
        if len(told) == len(facts):
            return text("done")
        told.append(facts[len(told)])
        return call("note", text=told[-1])

    async def note(args: Note) -> str:
        return args.text

    summarizer = ScriptedModel(lambda _: text("summary: the facts so far"))
    memory = ShortTermMemory(summarizer, window_tokens=600, keep_recent=2)
    agent = Agent(
        "noter", model=ScriptedModel(script), tools=[Tool.from_function(note)], memory=memory
    )
    plan = Plan(goal="g", steps=[Step(id="a", task="take notes", agent="w")])
    store = MemoryCheckpointStore()
    executor = Executor({"w": agent_worker(agent)}, store=store, limits=Limits(prices=FREE))
    outcome = asyncio.run(executor.run(plan))
    assert outcome.status == "done", outcome.reason
    assert summarizer.calls, "the step's conversation outgrew its window and was summarized"
    chats = [s["name"] for s in store.load_trace(outcome.run_id) if s["name"].startswith("chat")]
    assert chats.count("chat scripted") > len(facts)  # the agent's calls plus the summaries
    assert memory.turns == [] and memory.summary == ""  # the agent's own memory stayed untouched
