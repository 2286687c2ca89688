"""Orchestration overhead: vouch's executor vs LangGraph, at matched durability, in one run.

Two graphs, every node a no-op that writes one small value (so every engine has
something to commit per node):

- fan-out/fan-in: a hub, then 9 rounds of 110 parallel nodes joined into the
  next hub (1,000 nodes, 19 super-steps); the figure is per node;
- chain: 100 steps, each depending on the previous one (100 super-steps); the
  figure is per step.

Durability is matched, three ways:

- none: vouch's in-memory checkpoint store / LangGraph without a checkpointer;
- SQLite NORMAL: vouch's ``SQLiteCheckpointStore(synchronous="NORMAL")`` (WAL) /
  LangGraph's ``SqliteSaver`` (WAL) with ``PRAGMA synchronous=NORMAL`` set on its
  connection;
- SQLite FULL: ``SQLiteCheckpointStore(synchronous="FULL")`` / ``SqliteSaver`` as it
  comes (WAL, SQLite's default ``synchronous=FULL``: every commit fsynced).

What is durable, and when. LangGraph runs with ``durability="sync"``: a
super-step's checkpoint is committed before the next super-step starts (its
default, ``"async"``, commits it while the next one runs, a weaker promise);
each node's writes are also committed, one commit per node, from a background
thread, not waited for. vouch commits a finished step before any step that
depends on it starts; the steps that finish together (a fan-out's wave) share
one commit. So both wait for one commit per super-step on the critical path;
LangGraph additionally commits once per node. The ``commits`` column counts the
COMMITs each engine made in an extra, untimed run (an SQLite trace callback on
its connection).

Floors, measured in the same run: each engine's own write transactions (every
``BEGIN``/``INSERT``/.../``COMMIT`` it sent, recorded with the trace callback,
values inlined) replayed on a fresh database with the same schema and pragmas,
no engine at all. A floor is what that engine's commits cost on this disk; an
engine cannot run faster than its floor without committing less.

Method: every repetition runs each engine once, in a rotating order (so load
from other work on the machine falls on all of them alike), each on a fresh
database, after a ``gc.collect()`` and an ``os.sync()``. Build (Plan + validation + store / StateGraph
+ compile + saver) is timed apart from the run. Figures are medians over the
repetitions; "vs LangGraph" is the median of the per-repetition ratios to the
LangGraph run of the same repetition. LangGraph runs its synchronous API
(``invoke``, sync nodes: its fastest path with ``SqliteSaver``); vouch its async
executor.

Usage: .venv/bin/python scripts/bench/orchestration.py [--repeat 7] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import operator
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from vouch.agents import Executor, Limits, Plan, SQLiteCheckpointStore, Step, StepContext

WIDTH, ROUNDS, CHAIN = 110, 9, 100
Durability = str  # "none" | "NORMAL" | "FULL"
Edges = list[tuple[str, list[str]]]
WRITES = ("BEGIN", "INSERT", "UPDATE", "DELETE", "REPLACE", "COMMIT", "ROLLBACK")


def fan_edges() -> Edges:
    """(node, its dependencies) for the fan-out/fan-in graph: 1 + 9 * (110 + 1) = 1,000 nodes."""
    nodes: Edges = [("hub0", [])]
    for r in range(ROUNDS):
        layer = [f"r{r}n{i}" for i in range(WIDTH)]
        nodes += [(n, [f"hub{r}"]) for n in layer]
        nodes.append((f"hub{r + 1}", layer))
    return nodes


def chain_edges() -> Edges:
    """(node, its dependencies) for a 100-step chain."""
    return [(f"c{i}", [f"c{i - 1}"] if i else []) for i in range(CHAIN)]


def supersteps(edges: Edges) -> int:
    """How many waves the graph runs in (its depth)."""
    depth: dict[str, int] = {}
    for name, deps in edges:
        depth[name] = 1 + max((depth[d] for d in deps), default=0)
    return max(depth.values())


@dataclass
class Built:
    """A built engine: what runs it, and the SQLite connection it writes through (if any)."""

    run: Callable[[], None]
    conn: sqlite3.Connection | None = None
    close: Callable[[], None] = lambda: None


async def _one(ctx: StepContext) -> int:
    return 1


def build_vouch(edges: Edges, durability: Durability, db: Path) -> Built:
    """Build the plan, the store and the executor; return what runs it."""
    plan = Plan(
        goal="bench", steps=[Step(id=n, task="noop", agent="w", depends_on=d) for n, d in edges]
    )
    store = None if durability == "none" else SQLiteCheckpointStore(db, durability)  # type: ignore[arg-type]
    executor = Executor({"w": _one}, store=store, concurrency=WIDTH, limits=Limits(max_steps=10**6))
    plan.check({"w"})

    def run() -> None:
        outcome = asyncio.run(executor.run(plan))
        assert outcome.status == "done" and len(outcome.outputs) == len(edges), outcome.reason

    conn = store._db if store is not None else None  # the bench records its writes
    return Built(run, conn, store.close if store is not None else lambda: None)


class _State(TypedDict, total=False):
    x: Annotated[int, operator.add]


def _lg_one(state: _State) -> dict[str, Any]:
    return {"x": 1}


def build_langgraph(edges: Edges, durability: Durability, db: Path) -> Built:
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
    saver, conn = None, None
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
        # durability="sync": each super-step's checkpoint is committed before the next starts
        # (only with a checkpointer: without one LangGraph 1.2.24 fails on durability="sync")
        kwargs: dict[str, Any] = {} if saver is None else {"durability": "sync"}
        out = app.invoke({"x": 0}, config, **kwargs)  # type: ignore[arg-type]
        assert out["x"] == len(edges)

    return Built(run, conn, conn.close if conn is not None else lambda: None)


Builder = Callable[[Edges, Durability, Path], Built]


def record_writes(make: Builder, edges: Edges, durability: Durability, db: Path) -> list[str]:
    """Run an engine once, untimed, and return every write statement it sent (values inlined)."""
    built = make(edges, durability, db)
    assert built.conn is not None
    statements: list[str] = []
    built.conn.set_trace_callback(statements.append)
    built.run()
    built.conn.set_trace_callback(None)
    built.close()
    return [s for s in statements if s.lstrip().upper().startswith(WRITES)]


def floor_builder(engine: Builder, writes: list[str]) -> Builder:
    """An engine's recorded write transactions, replayed alone on a fresh database."""

    def build_floor(edges: Edges, durability: Durability, db: Path) -> Built:
        engine(edges, durability, db).close()  # the same schema (and WAL) as the engine's
        conn = sqlite3.connect(db, isolation_level=None)  # the recorded BEGIN/COMMIT, verbatim
        conn.execute(f"PRAGMA synchronous={durability}")

        def run() -> None:
            for statement in writes:
                conn.execute(statement)

        return Built(run, conn, conn.close)

    return build_floor


@dataclass
class Row:
    """One engine's figures at one durability."""

    engine: str
    make: Builder
    builds: list[float] = field(default_factory=list)
    runs: list[float] = field(default_factory=list)
    commits: int | None = None


def measure(
    rows: list[Row], edges: Edges, durability: Durability, tmp: Path, repeat: int
) -> list[float]:
    """Time every row ``repeat`` times, interleaved; return the per-repetition LangGraph runs."""
    for i in range(repeat):
        order = rows[i % len(rows) :] + rows[: i % len(rows)]  # a rotating order
        for row in order:
            db = tmp / f"{row.engine}-{durability}-{len(edges)}-{i}.db".replace(" ", "_")
            gc.collect()
            start = time.perf_counter()
            built = row.make(edges, durability, db)
            row.builds.append(time.perf_counter() - start)
            gc.collect()
            os.sync()  # no run pays for writing back another's dirty pages in its fsyncs
            start = time.perf_counter()
            built.run()
            row.runs.append(time.perf_counter() - start)
            built.close()
    return rows[0].runs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="repetitions (medians; at least 5)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--only", choices=["fan", "chain"], help="one graph only")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vouch-bench-"))
    versions = ", ".join(
        f"{p} {importlib.metadata.version(p)}"
        for p in ("langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite")
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{versions}; vouch {importlib.metadata.version('vouch')}; sqlite {sqlite3.sqlite_version}; "
        f"median of {args.repeat}; {os.cpu_count()} cores, load {load:.1f} at start"
    )
    if args.markdown:
        print(
            "\n| graph | durability | engine | commits | build ms | run ms | µs per unit | vs LangGraph |"
        )
        print("|---|---|---|---:|---:|---:|---:|---:|")
    else:
        print(
            f"{'graph':<15} {'durability':<10} {'engine':<16} {'commits':>7} {'build ms':>9} "
            f"{'run ms':>9} {'µs/unit':>9} {'vs LangGraph':>13}"
        )
    graphs = [("fan-out 1,000", "node", fan_edges()), ("chain 100", "step", chain_edges())]
    for label, unit, edges in graphs:
        if args.only and not label.startswith(args.only):
            continue
        units = len(edges)
        assert supersteps(edges) == (19 if unit == "node" else CHAIN)
        for durability in ("none", "NORMAL", "FULL"):
            rows = [Row("LangGraph", build_langgraph), Row("vouch", build_vouch)]
            if durability != "none":
                for row in list(rows):
                    db = tmp / f"record-{row.engine}-{durability}-{units}.db"
                    writes = record_writes(row.make, edges, durability, db)
                    row.commits = sum(1 for s in writes if s.strip().upper() == "COMMIT")
                    floor = Row(f"floor: {row.engine}", floor_builder(row.make, writes))
                    floor.commits = row.commits
                    rows.append(floor)
            base = measure(rows, edges, durability, tmp, args.repeat)
            for row in rows:
                build = statistics.median(row.builds) * 1e3
                run = statistics.median(row.runs) * 1e3
                ratio = statistics.median(r / b for r, b in zip(row.runs, base, strict=True))
                commits = "-" if row.commits is None else f"{row.commits:,}"
                per = run * 1e3 / units
                if args.markdown:
                    print(
                        f"| {label} | {durability} | {row.engine} | {commits} | {build:.1f} | "
                        f"{run:.1f} | {per:.1f} /{unit} | {ratio:.2f}x |"
                    )
                else:
                    print(
                        f"{label:<15} {durability:<10} {row.engine:<16} {commits:>7} {build:>9.1f} "
                        f"{run:>9.1f} {per:>7.1f}/{unit[0]} {ratio:>12.2f}x"
                    )


if __name__ == "__main__":
    main()
