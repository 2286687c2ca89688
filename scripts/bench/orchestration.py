"""Orchestration overhead: vouch's executor vs LangGraph, at matched durability, in one run.

Two graphs, every node a no-op that writes one small value (so every engine has
something to commit per node):

- fan-out/fan-in: a hub, then 9 rounds of 110 parallel nodes joined into the
  next hub (1,000 nodes, 19 super-steps);
- chain: 100 steps, each depending on the previous one (100 super-steps).

Durability is matched, three ways:

- none: vouch's in-memory checkpoint store / LangGraph without a checkpointer;
- SQLite NORMAL: vouch's ``SQLiteCheckpointStore(synchronous="NORMAL")`` (WAL) /
  LangGraph's ``SqliteSaver`` (WAL) with ``PRAGMA synchronous=NORMAL`` set on its
  connection;
- SQLite FULL: ``SQLiteCheckpointStore(synchronous="FULL")`` / ``SqliteSaver`` as it
  comes (WAL, SQLite's default ``synchronous=FULL``: every commit fsynced).

Commit granularity is the same: vouch commits each finished step before its
dependents start; LangGraph, run with ``durability="sync"`` (persisted before the
next step starts; its default ``"async"`` persists while the next step runs, a
weaker promise), commits each node's writes (``put_writes``) as the node
finishes, plus a checkpoint per super-step. The floor row is the bare cost
of those commits: one ``INSERT`` + ``COMMIT`` per node into a WAL SQLite file
under the same ``synchronous``, with no engine at all. LangGraph runs its
synchronous API (``invoke``, sync nodes: its fastest path with ``SqliteSaver``);
vouch its async executor. Build (Plan + validation / StateGraph + compile) is
timed apart from the run; each figure is the median of --repeat runs. Per node
is the run time over the nodes; per step is the run time over the super-steps.

Usage: .venv/bin/python scripts/bench/orchestration.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import operator
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

from vouch.agents import Executor, Limits, Plan, SQLiteCheckpointStore, Step, StepContext

WIDTH, ROUNDS, CHAIN = 110, 9, 100
Durability = str  # "none" | "NORMAL" | "FULL"


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


def supersteps(edges: list[tuple[str, list[str]]]) -> int:
    """How many waves the graph runs in (its depth)."""
    depth: dict[str, int] = {}
    for name, deps in edges:
        depth[name] = 1 + max((depth[d] for d in deps), default=0)
    return max(depth.values())


async def _one(ctx: StepContext) -> int:
    return 1


def vouch_runner(
    edges: list[tuple[str, list[str]]], durability: Durability, db: Path
) -> Callable[[], None]:
    """Build the plan and the executor; return what runs it."""
    plan = Plan(
        goal="bench", steps=[Step(id=n, task="noop", agent="w", depends_on=d) for n, d in edges]
    )
    store = None if durability == "none" else SQLiteCheckpointStore(db, durability)  # type: ignore[arg-type]
    executor = Executor({"w": _one}, store=store, concurrency=WIDTH, limits=Limits(max_steps=10**6))
    plan.check({"w"})

    def run() -> None:
        outcome = asyncio.run(executor.run(plan))
        assert outcome.status == "done" and len(outcome.outputs) == len(edges)

    return run


class _State(TypedDict, total=False):
    x: Annotated[int, operator.add]


def _lg_one(state: _State) -> dict[str, Any]:
    return {"x": 1}


def langgraph_runner(
    edges: list[tuple[str, list[str]]], durability: Durability, db: Path
) -> Callable[[], None]:
    """The same graph as a LangGraph StateGraph (sync nodes writing one value)."""
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(_State)
    for name, _ in edges:
        graph.add_node(name, _lg_one)
    for name, deps in edges:
        if not deps:
            graph.add_edge(START, name)
        elif len(deps) == 1:
            graph.add_edge(deps[0], name)
        else:
            graph.add_edge(deps, name)  # a join: waits for all of them
    graph.add_edge(edges[-1][0], END)
    saver = None
    if durability != "none":
        conn = sqlite3.connect(db, check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()  # WAL; synchronous stays SQLite's default (FULL) unless set below
        if durability == "NORMAL":
            conn.execute("PRAGMA synchronous=NORMAL")
    app = graph.compile(checkpointer=saver)
    config: dict[str, Any] = {"recursion_limit": 10**6, "max_concurrency": WIDTH}
    if saver is not None:
        config["configurable"] = {"thread_id": "bench"}

    def run() -> None:
        # durability="sync": each step's writes are persisted before the next step starts,
        # vouch's guarantee (LangGraph's default, "async", persists while the next one runs)
        # (only with a checkpointer: without one LangGraph 1.2.24 fails on durability="sync")
        kwargs: dict[str, Any] = {} if saver is None else {"durability": "sync"}
        out = app.invoke({"x": 0}, config, **kwargs)  # type: ignore[arg-type]
        assert out["x"] == len(edges)

    return run


def floor_runner(
    edges: list[tuple[str, list[str]]], durability: Durability, db: Path
) -> Callable[[], None]:
    """The commits alone: one INSERT + COMMIT per node, WAL, the same ``synchronous``."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={durability}")
    conn.execute("CREATE TABLE IF NOT EXISTS steps (id TEXT PRIMARY KEY, output TEXT)")

    def run() -> None:
        for name, _ in edges:
            with conn:
                conn.execute("INSERT OR REPLACE INTO steps VALUES (?, ?)", (name, "1"))

    return run


Runner = Callable[[list[tuple[str, list[str]]], Durability, Path], Callable[[], None]]


def measure(
    make: Runner, edges: list[tuple[str, list[str]]], durability: Durability, tmp: Path, repeat: int
) -> tuple[float, float]:
    """Median build time and median run time, in milliseconds (a fresh database each run)."""
    builds, runs = [], []
    for i in range(repeat):
        db = tmp / f"{make.__name__}-{durability}-{len(edges)}-{i}.db"
        start = time.perf_counter()
        run = make(edges, durability, db)
        builds.append(time.perf_counter() - start)
        start = time.perf_counter()
        run()
        runs.append(time.perf_counter() - start)
    return statistics.median(builds) * 1e3, statistics.median(runs) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vouch-bench-"))
    version = importlib.metadata.version("langgraph")
    print(
        f"LangGraph {version} (langgraph-checkpoint-sqlite "
        f"{importlib.metadata.version('langgraph-checkpoint-sqlite')}), median of {args.repeat}"
    )
    header = f"{'graph':<16} {'durability':<11} {'engine':<10} {'build ms':>9} {'run ms':>9} "
    print(header + f"{'us/node':>9} {'us/step':>9} {'vs LangGraph':>13}")
    for label, edges in [("fan-out 1,000", fan_edges()), ("chain 100", chain_edges())]:
        nodes, steps = len(edges), supersteps(edges)
        for durability in ("none", "NORMAL", "FULL"):
            engines: list[tuple[str, Runner]] = [
                ("LangGraph", langgraph_runner),
                ("vouch", vouch_runner),
            ]
            if durability != "none":
                engines.append(("floor", floor_runner))
            base = 0.0
            for engine, make in engines:
                build, run = measure(make, edges, durability, tmp, args.repeat)
                base = base or run
                print(
                    f"{label:<16} {durability:<11} {engine:<10} {build:>9.1f} {run:>9.1f} "
                    f"{run * 1e3 / nodes:>9.1f} {run * 1e3 / steps:>9.1f} {run / base:>12.2f}x"
                )


if __name__ == "__main__":
    main()
