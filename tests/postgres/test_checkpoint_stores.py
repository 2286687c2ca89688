"""The checkpoint store conformance suite on PostgreSQL, and the lease suite on SQLite and PostgreSQL.

The store tests are the ones tests/engine/test_checkpoint.py runs against the
memory and SQLite stores, imported here and run against ``PostgresCheckpointStore``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.test_checkpoint import (  # the same suite, here against PostgreSQL
    test_decisions_last_one_wins,
    test_effects_are_recorded_once_by_key,
    test_every_step_is_checkpointed_and_resume_skips_finished_steps,
    test_runs_round_trip_and_list_newest_first,
    test_steps_upsert_and_keep_outputs,
    test_traces_append_in_order_per_run,
    test_unknown_run_is_a_checkpoint_error,
    test_usage_sums_the_step_records,
)
from vouch.agents import (
    CheckpointError,
    CheckpointStore,
    MemoryCheckpointStore,
    RunLeases,
    RunRecord,
    SQLiteCheckpointStore,
    open_checkpoints,
    run_leases,
)
from vouch.agents._checkpoint_pg import PostgresCheckpointStore

__all__ = [
    "test_decisions_last_one_wins",
    "test_effects_are_recorded_once_by_key",
    "test_every_step_is_checkpointed_and_resume_skips_finished_steps",
    "test_runs_round_trip_and_list_newest_first",
    "test_steps_upsert_and_keep_outputs",
    "test_traces_append_in_order_per_run",
    "test_unknown_run_is_a_checkpoint_error",
    "test_usage_sums_the_step_records",
]


@pytest.fixture
def store(pg_url: str) -> Iterator[CheckpointStore]:
    pg = open_checkpoints(pg_url)
    assert isinstance(pg, PostgresCheckpointStore)
    yield pg
    pg.close()


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return str(request.getfixturevalue("pg_url"))


def _open(location: str) -> tuple[CheckpointStore, RunLeases]:
    checkpoints = open_checkpoints(location)
    return checkpoints, run_leases(checkpoints)


def _close(*things: object) -> None:
    for thing in things:
        close = getattr(thing, "close", None)
        if close is not None:
            close()


def test_open_checkpoints_picks_the_backend_by_location(tmp_path: Path, pg_url: str) -> None:
    sqlite = open_checkpoints(str(tmp_path / "runs.db"))
    pg = open_checkpoints(pg_url)
    assert isinstance(sqlite, SQLiteCheckpointStore) and isinstance(pg, PostgresCheckpointStore)
    assert run_leases(pg) is pg
    _close(sqlite, pg)
    with pytest.raises(CheckpointError, match="keeps no run leases"):
        run_leases(MemoryCheckpointStore())


def test_a_claim_holds_until_it_expires_then_changes_hands(location: str) -> None:
    checkpoints, leases = _open(location)
    first = leases.claim("r1", "alice", ttl=1.0)
    assert first is not None and first.epoch == 1 and first.owner == "alice"
    assert leases.claim("r1", "bob", ttl=1.0) is None  # alice holds it
    again = leases.claim("r1", "alice", ttl=1.0)  # her own: extended, same epoch
    assert again is not None and again.epoch == 1 and again.expires_at >= first.expires_at
    held = leases.holder("r1")
    assert held is not None and held.owner == "alice"
    time.sleep(1.2)
    assert leases.holder("r1") is None
    taken = leases.claim("r1", "bob", ttl=5.0)
    assert taken is not None and taken.owner == "bob" and taken.epoch == 2
    assert leases.renew(first, ttl=5.0) is None  # alice finds she lost it
    leases.release(first)  # a stale release does not free bob's lease
    held = leases.holder("r1")
    assert held is not None and held.owner == "bob"
    renewed = leases.renew(taken, ttl=10.0)
    assert renewed is not None and renewed.expires_at > taken.expires_at
    leases.release(renewed)
    assert leases.holder("r1") is None
    _close(leases, checkpoints)


def test_claim_next_takes_the_oldest_running_run_nobody_holds(location: str) -> None:
    checkpoints, leases = _open(location)
    for run_id, status, created in (
        ("old-done", "done", 1.0),
        ("a", "running", 2.0),
        ("b", "running", 3.0),
        ("paused", "interrupted", 4.0),
    ):
        checkpoints.save_run(RunRecord(run_id=run_id, goal="g", status=status, created_at=created))
    assert leases.claimable(["running"]) == ["a", "b"]
    got = leases.claim_next("w1", ttl=5.0)
    assert got is not None and got.run_id == "a"
    got2 = leases.claim_next("w2", ttl=5.0)
    assert got2 is not None and got2.run_id == "b"
    assert leases.claim_next("w3", ttl=5.0) is None
    later = leases.claim_next("w3", ttl=5.0, statuses=["interrupted"])
    assert later is not None and later.run_id == "paused"
    _close(leases, checkpoints)


def test_racing_workers_never_share_a_run(location: str) -> None:
    checkpoints, leases = _open(location)
    for i in range(5):
        checkpoints.save_run(RunRecord(run_id=f"r{i}", goal="g", created_at=float(i)))
    won: dict[str, list[str]] = {}
    start = threading.Barrier(8)

    def worker(name: str) -> None:
        mine_store, mine = _open(location)  # each worker its own connection
        start.wait()
        while (lease := mine.claim_next(name, ttl=30.0)) is not None:
            won.setdefault(lease.run_id, []).append(name)
        _close(mine, mine_store)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [f"r{i}" for i in range(5)]
    assert all(len(owners) == 1 for owners in won.values()), won
    _close(leases, checkpoints)


def test_a_lease_keeper_renews_and_releases(location: str) -> None:
    from vouch.agents import LeaseKeeper

    checkpoints, leases = _open(location)
    lease = leases.claim("r1", "alice", ttl=0.6)
    assert lease is not None
    with LeaseKeeper(leases, lease, ttl=0.6) as keeper:
        time.sleep(1.5)  # longer than the ttl: only renewals keep it
        assert leases.claim("r1", "bob", ttl=1.0) is None
        assert not keeper.lost.is_set()
    assert leases.holder("r1") is None  # released at the end
    _close(leases, checkpoints)


def test_postgres_store_errors_hide_the_password() -> None:
    with pytest.raises(CheckpointError) as caught:
        open_checkpoints("postgresql://bob:hunter2@127.0.0.1:1/x?connect_timeout=2")
    assert "hunter2" not in str(caught.value) and "bob:***@" in str(caught.value)


def _snapshot(checkpoints: CheckpointStore, run_id: str) -> tuple[object, ...]:
    return (
        checkpoints.load_run(run_id),
        checkpoints.load_steps(run_id),
        checkpoints.load_decisions(run_id),
        checkpoints.load_trace(run_id),
    )


def test_a_stale_workers_writes_are_refused_once_another_claims_the_run(location: str) -> None:
    """Fencing: A paused past its lease; B claimed; every write of A is refused, nothing lands."""
    from vouch.agents import Decision, LeaseLost, StepRecord

    a_store, a_leases = _open(location)
    b_store, b_leases = _open(location)
    a_store.save_run(RunRecord(run_id="r1", goal="g"))
    a = a_leases.claim("r1", "worker-a", ttl=0.4)
    assert a is not None
    with a_store.fenced(a):
        a_store.save_step("r1", StepRecord(step_id="s1", status="done", output=1))
        time.sleep(0.6)  # A's lease expired, nobody claimed: A still holds it
        a_store.record_effect("k0", "r1", {"n": 0})
        assert a_leases.renew(a, ttl=0.4) is not None  # renew only because still the holder
        time.sleep(0.6)
        b = b_leases.claim("r1", "worker-b", ttl=30.0)
        assert b is not None and b.epoch == a.epoch + 1
        before = _snapshot(b_store, "r1")
        writes = [
            lambda: a_store.save_run(RunRecord(run_id="r1", goal="g", status="done")),
            lambda: a_store.save_step("r1", StepRecord(step_id="s2", status="done", output=2)),
            lambda: a_store.save_decision("r1", Decision(key="k", approved=True)),
            lambda: a_store.record_effect("k1", "r1", {"sent": True}),
            lambda: a_store.append_trace("r1", [{"name": "stale"}]),
            lambda: a_store.effect("k0"),  # the look-up before an effect: no effect starts
        ]
        for write in writes:
            with pytest.raises(LeaseLost) as lost:
                write()
            error = lost.value
            assert (error.run_id, error.owner, error.epoch) == ("r1", "worker-a", a.epoch)
            assert (error.holder, error.holder_epoch) == ("worker-b", b.epoch)
            assert "'r1'" in str(error) and "worker-b" in str(error)
        with pytest.raises(LeaseLost), a_store.batch():  # a batch: none of it
            a_store.save_step("r1", StepRecord(step_id="s3", status="done", output=3))
        assert a_leases.renew(a, ttl=5.0) is None  # and A cannot renew its way back
    assert _snapshot(b_store, "r1") == before
    assert b_store.effect("k1") == (False, None) and b_store.effect("k0") == (True, {"n": 0})
    with b_store.fenced(b):  # the holder writes as usual
        b_store.save_run(RunRecord(run_id="r1", goal="g", status="done"))
    assert b_store.load_run("r1").status == "done"
    assert b_leases.holder("r1") == b
    a_store.save_step("r1", StepRecord(step_id="s9", status="done"))  # unfenced: as before
    _close(a_leases, a_store, b_leases, b_store)


def test_a_released_lease_fences_too_and_memory_stores_cannot_fence(location: str) -> None:
    from vouch.agents import LeaseLost

    checkpoints, leases = _open(location)
    checkpoints.save_run(RunRecord(run_id="r1", goal="g"))
    lease = leases.claim("r1", "worker-a", ttl=5.0)
    assert lease is not None
    leases.release(lease)
    with checkpoints.fenced(lease), pytest.raises(LeaseLost, match="last held by worker-a"):
        checkpoints.save_run(RunRecord(run_id="r1", goal="g", status="done"))
    assert checkpoints.load_run("r1").status == "running"
    with pytest.raises(CheckpointError, match="cannot be fenced"):
        MemoryCheckpointStore().fenced(lease)
    _close(leases, checkpoints)
