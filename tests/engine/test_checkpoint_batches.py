"""Group commits: ``CheckpointStore.batch()`` and the executor's use of it.

What must hold: a batch is durable when it exits and (SQLite) not before, all or
nothing; the steps of a wave share one commit, yet no step starts before every
step it depends on is on disk; a run that ends early still saves every step
that finished.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from vouch.agents import (
    CheckpointStore,
    Executor,
    Limits,
    MemoryCheckpointStore,
    Plan,
    RunRecord,
    SQLiteCheckpointStore,
    Step,
    StepContext,
    StepRecord,
)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckpointStore]:
    if request.param == "memory":
        yield MemoryCheckpointStore()
    else:
        sqlite_store = SQLiteCheckpointStore(tmp_path / "runs.db")
        yield sqlite_store
        sqlite_store.close()


def _on_disk(db: Path) -> dict[str, str]:
    """Step id -> status, read through a connection of its own (what a crash would leave)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT step_id, body FROM steps").fetchall()
    return {sid: StepRecord.model_validate_json(body).status for sid, body in rows}


def test_writes_in_a_batch_are_all_there_when_it_exits(store: CheckpointStore) -> None:
    with store.batch():
        store.save_run(RunRecord(run_id="r", goal="g"))
        with store.batch():  # nested: joins the outer one
            store.save_step("r", StepRecord(step_id="a", status="done", output=1))
        store.save_step("r", StepRecord(step_id="b", status="done", output=2))
        store.append_trace("r", [{"spanId": "1"}])
    assert {k: r.output for k, r in store.load_steps("r").items()} == {"a": 1, "b": 2}
    assert store.load_run("r").goal == "g" and store.load_trace("r") == [{"spanId": "1"}]


def test_sqlite_batch_is_one_commit_that_others_see_only_when_it_exits(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteCheckpointStore(db, synchronous="FULL")
    before = store.commits
    with store.batch():
        for sid in ("a", "b", "c"):
            store.save_step("r", StepRecord(step_id=sid, status="done"))
        assert _on_disk(db) == {}  # not committed yet: a crash here loses all three
    assert _on_disk(db) == {"a": "done", "b": "done", "c": "done"}
    assert store.commits == before + 1
    store.save_step("r", StepRecord(step_id="d", status="done"))  # outside: a commit each
    assert store.commits == before + 2
    store.close()


def test_sqlite_batch_that_raises_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteCheckpointStore(db)
    store.save_step("r", StepRecord(step_id="kept", status="done"))
    with pytest.raises(RuntimeError, match="midway"), store.batch():  # noqa: PT012
        store.save_step("r", StepRecord(step_id="a", status="done"))
        raise RuntimeError("midway")
    assert _on_disk(db) == {"kept": "done"}
    store.save_step("r", StepRecord(step_id="b", status="done"))  # the store still works
    assert set(store.load_steps("r")) == {"kept", "b"}
    store.close()


def _fan(width: int) -> Plan:
    layer = [Step(id=f"n{i}", task="t", agent="w", depends_on=["hub"]) for i in range(width)]
    join = Step(id="join", task="t", agent="w", depends_on=[s.id for s in layer])
    return Plan(goal="g", steps=[Step(id="hub", task="t", agent="w"), *layer, join])


def test_a_wave_shares_one_commit_and_no_step_starts_before_its_inputs_are_on_disk(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteCheckpointStore(db)
    seen: dict[str, dict[str, str]] = {}

    async def work(ctx: StepContext) -> str:
        seen[ctx.step.id] = _on_disk(db)  # what another process would find now
        return ctx.step.id

    width = 40
    start = store.commits
    outcome = asyncio.run(Executor({"w": work}, store=store, concurrency=width).run(_fan(width)))
    assert outcome.status == "done" and len(outcome.outputs) == width + 2
    for step in _fan(width).steps:
        assert all(seen[step.id].get(dep) == "done" for dep in step.depends_on), step.id
    # the run's start, the hub, the wave (it may split in two when the loop runs some
    # steps before others are created), the join with the run's end: far fewer than a
    # commit per step (42 before batches)
    assert store.commits - start <= 6
    assert set(_on_disk(db)) == {s.id for s in _fan(width).steps}
    store.close()


def test_steps_that_finished_are_saved_when_a_sibling_fails_or_a_guard_stops_the_run(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteCheckpointStore(db)

    async def work(ctx: StepContext) -> str:
        if ctx.step.id == "n3":
            raise RuntimeError("broken")
        return ctx.step.id

    outcome = asyncio.run(
        Executor({"w": work}, store=store, refine_rounds=0, concurrency=10).run(
            _fan(8), run_id="failed"
        )
    )
    assert outcome.status == "failed"
    statuses = {
        sid: r.status for sid, r in store.load_steps("failed").items() if not sid.startswith("@")
    }
    assert statuses == {"hub": "done", "n3": "failed"} | {
        f"n{i}": "done" for i in range(8) if i != 3
    }

    # a guard: the 6th step trips max_steps while the wave's first ones are done
    limits = Limits(max_steps=5)
    stopped = asyncio.run(
        Executor({"w": work}, store=store, concurrency=10, limits=limits).run(
            Plan(goal="g", steps=[Step(id=f"p{i}", task="t", agent="w") for i in range(8)]),
            run_id="stopped",
        )
    )
    assert stopped.status == "stopped"
    done = {sid for sid, r in store.load_steps("stopped").items() if r.status == "done"}
    assert done == set(stopped.outputs) and len(done) == 5
    store.close()
