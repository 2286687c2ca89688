"""Orchestration overhead: vouch's executor vs LangGraph on no-op graphs, in one run.

Two graphs, every node a no-op coroutine, so all the time is the engine's:

- fan-out/fan-in: a hub, then 9 rounds of 110 parallel nodes joined into the
  next hub (1,000 nodes);
- chain: 100 steps, each depending on the previous one.

vouch runs them with its defaults (in-memory checkpoint after every step, a
span per step, guards on); a second vouch row checkpoints to SQLite (WAL).
LangGraph (the `bench` extra) runs the same graphs as a StateGraph with async
nodes and no checkpointer. Build (Plan + validation / StateGraph + compile) is
timed apart from the run; each figure is the median of --repeat runs.

Usage: .venv/bin/python scripts/bench/orchestration.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

from agents import Executor, Limits, Plan, SQLiteCheckpointStore, Step, StepContext

WIDTH, ROUNDS, CHAIN = 110, 9, 100


def fan_edges() -> list[tuple[str, list[str]]]:
    """(node, its dependencies) for the fan-out/fan-in graph: 1 + 9 * (110 + 1) = 1,000 nodes."""
    nodes: list[tuple[str, list[str]]] = [("hub0", [])]
    for r in range(ROUNDS):
        layer = [f"r{r}n{i}" for i in range(WIDTH)]
        nodes += [(n, [f"hub{r}"]) for n in layer]
        nodes.append((f"hub{r + 1}", layer))
    return nodes


def chain_edges() -> list[tuple[str, list[str]]]:
    """(node, its dependencies) for a 100-step chain."""
    return [(f"c{i}", [f"c{i - 1}"] if i else []) for i in range(CHAIN)]


async def _noop(ctx: StepContext) -> None:
    return None


def vouch_runner(
    edges: list[tuple[str, list[str]]], sqlite: Path | None
) -> Callable[[], Awaitable[Any]]:
    """Build the plan and the executor; return the coroutine factory that runs it."""
    plan = Plan(
        goal="bench", steps=[Step(id=n, task="noop", agent="w", depends_on=d) for n, d in edges]
    )
    store = SQLiteCheckpointStore(sqlite) if sqlite else None
    executor = Executor(
        {"w": _noop}, store=store, concurrency=WIDTH, limits=Limits(max_steps=10**6)
    )
    plan.check({"w"})

    async def run() -> None:
        outcome = await executor.run(plan)
        assert outcome.status == "done" and len(outcome.outputs) == len(edges)

    return run


class _State(TypedDict, total=False):
    x: int


async def _lg_noop(state: _State) -> dict[str, Any]:
    return {}


def langgraph_runner(edges: list[tuple[str, list[str]]]) -> Callable[[], Awaitable[Any]]:
    """The same graph as a LangGraph StateGraph (async no-op nodes, no checkpointer)."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(_State)
    for name, _ in edges:
        graph.add_node(name, _lg_noop)
    for name, deps in edges:
        if not deps:
            graph.add_edge(START, name)
        elif len(deps) == 1:
            graph.add_edge(deps[0], name)
        else:
            graph.add_edge(deps, name)  # a join: waits for all of them
    graph.add_edge(edges[-1][0], END)
    app = graph.compile()

    async def run() -> None:
        await app.ainvoke({"x": 0}, {"recursion_limit": 10**6, "max_concurrency": WIDTH})

    return run


def measure(build: Callable[[], Callable[[], Awaitable[Any]]], repeat: int) -> tuple[float, float]:
    """Median build time and median run time, in milliseconds."""
    builds, runs = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        run = build()
        builds.append(time.perf_counter() - start)
        start = time.perf_counter()
        asyncio.run(run())
        runs.append(time.perf_counter() - start)
    return statistics.median(builds) * 1e3, statistics.median(runs) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vouch-bench-"))
    rows = []
    for label, edges in [
        ("fan-out/fan-in, 1,000 nodes", fan_edges()),
        ("chain, 100 steps", chain_edges()),
    ]:
        lg = measure(lambda e=edges: langgraph_runner(e), args.repeat)
        vm = measure(lambda e=edges: vouch_runner(e, None), args.repeat)
        dbs = iter(tmp / f"{label[:4]}-{i}.db" for i in range(args.repeat))
        vs = measure(lambda e=edges, d=dbs: vouch_runner(e, next(d)), args.repeat)
        rows.append((label, lg, vm, vs))
    print(f"{'graph':<28} {'engine':<26} {'build ms':>9} {'run ms':>9} {'run vs LangGraph':>17}")
    for label, lg, vm, vs in rows:
        for engine, (build, run) in [
            ("LangGraph 1.2.24", lg),
            ("vouch (memory checkpoints)", vm),
            ("vouch (SQLite checkpoints)", vs),
        ]:
            print(f"{label:<28} {engine:<26} {build:>9.1f} {run:>9.1f} {run / lg[1]:>16.2f}x")


if __name__ == "__main__":
    main()
