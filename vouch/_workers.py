"""Workers that share one run store: each takes runs by lease and drives them to an end.

``vouch runs submit GOAL`` saves a settlement run for the workers (status
``running``, no lease, no steps yet); ``vouch runs work`` on any number of
hosts claims runs one at a time (``RunLeases.claim_next``), renews the lease
while it drives the run (``LeaseKeeper``) and releases it when the run ends or
pauses for a human. A worker that dies stops renewing; once its lease expires
another worker claims the run and resumes it from its checkpoint: finished
steps are not run again, and recorded effects are not done again (their
idempotency keys; see ``agents._lease``).

With ``VOUCH_RUNS_URL`` and ``VOUCH_LOG_URL`` on one PostgreSQL server, the
workers may run on different hosts; with the SQLite defaults, in different
processes of one host.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from vouch.agents import (
    CheckpointStore,
    Executor,
    Lease,
    LeaseKeeper,
    LeaseLost,
    RunLeases,
    RunOutcome,
    RunRecord,
    open_checkpoints,
    run_leases,
)

from ._errors import VouchError
from ._flow import ENTRYPOINT, use_settings
from ._settings import VouchSettings

OnPause = Callable[[Executor, RunOutcome], bool]
"""Called when a run pauses for a human: decide (``executor.decide``) and return True to resume."""


def default_owner() -> str:
    """``host:pid``: names the worker in the lease table."""
    return f"{socket.gethostname()}:{os.getpid()}"


def submit(settings: VouchSettings, goal: str, run_id: str | None = None) -> RunRecord:
    """Save a settlement run for the workers to take (its plan is made by the worker)."""
    store = open_checkpoints(settings.runs_location)
    record = RunRecord(run_id=run_id or uuid.uuid4().hex[:12], goal=goal, entrypoint=ENTRYPOINT)
    store.save_run(record)
    _close(store)
    return record


@dataclass
class Worked:
    """One run a worker drove: how it ended and the lease it held."""

    outcome: RunOutcome | None
    """None when the worker lost the lease and stopped (``error`` says why)."""
    owner: str
    epoch: int
    lost: bool
    error: str = ""
    """``LeaseLost: ...`` when the store refused a write because the run changed hands."""


class Worker:
    """Takes runs by lease from the settings' run store and drives them.

    Args:
        settings: the home, ``runs_url``/``log_url``.
        owner: the name the lease carries (default ``host:pid``).
        ttl: lease seconds; renewed every ttl/3 while a run is driven.
        on_pause: decides for a run that pauses for a human (tests, bots); None
            leaves the run paused for ``vouch runs approve``.
        wait_for_key: seconds to wait for another live worker on the same
            deployer key to end before refusing (``KeyInUse``); 0: refuse at once.
    """

    def __init__(
        self,
        settings: VouchSettings,
        owner: str | None = None,
        ttl: float = 30.0,
        on_pause: OnPause | None = None,
        wait_for_key: float = 0.0,
    ) -> None:
        self.settings, self.owner, self.ttl = settings, owner or default_owner(), ttl
        self.on_pause = on_pause
        use_settings(settings)
        self.store: CheckpointStore = open_checkpoints(settings.runs_location)
        self.leases: RunLeases = run_leases(self.store)
        self._key: LeaseKeeper | None = None
        self._hold_key(wait_for_key)

    def _hold_key(self, wait: float) -> None:
        """Hold the deployer key's lease for the worker's life (one live worker per key).

        Two workers sending from one key on one chain take their nonces from
        the node's pending count and can collide; so a worker holds a lease on
        ``key_slot`` while it lives (renewed like a run's, free ``ttl`` after
        it dies) and another worker on the same key is refused at start-up.

        Raises:
            KeyInUse: another live worker holds the key (after ``wait`` seconds).
        """
        slot, address = key_slot(self.settings)
        deadline = time.monotonic() + wait
        while (lease := self.leases.claim(slot, self.owner, self.ttl)) is None:
            if time.monotonic() >= deadline:
                held = self.leases.holder(slot)
                self.close()
                other = f"worker {held.owner}" if held else "another worker"
                raise KeyInUse(
                    f"deployer key {address} on this chain is in use by live {other} on the "
                    "same run store: two workers on one key collide on nonces. Give each worker "
                    "its own funded key (VOUCH_DEPLOYER_KEYSTORE), or stop the other worker"
                )
            time.sleep(min(0.5, self.ttl / 3))
        self._key = LeaseKeeper(self.leases, lease, self.ttl).__enter__()

    def work_one(self) -> Worked | None:
        """Claim one run nobody holds and drive it; None if there is none.

        Raises:
            KeyInUse: the worker lost its deployer key's lease (it was paused
                past its ttl and another worker took the key).
        """
        if self._key is not None and self._key.lost.is_set():
            raise KeyInUse(
                f"worker {self.owner} lost the lease on its deployer key to another worker "
                "(it was paused longer than its lease): it stops; give each worker its own key"
            )
        lease = self.leases.claim_next(self.owner, self.ttl)
        if lease is None:
            return None
        from ._runs import load_entrypoint

        run = self.store.load_run(lease.run_id)
        # fenced: once another worker claims the run (this one was paused past its
        # lease), the store refuses this worker's writes and effects with LeaseLost
        with LeaseKeeper(self.leases, lease, self.ttl) as keeper, self.store.fenced(lease):
            try:
                executor = load_entrypoint(run.entrypoint or ENTRYPOINT)(self.store)
                outcome = asyncio.run(self._drive(executor, lease))
            except LeaseLost as exc:
                keeper.lost.set()  # nothing to release: the run is another worker's
                return Worked(None, self.owner, lease.epoch, True, f"LeaseLost: {exc}")
        return Worked(outcome, self.owner, lease.epoch, keeper.lost.is_set())

    async def _drive(self, executor: Executor, lease: Lease) -> RunOutcome:
        outcome = await executor.resume(lease.run_id)
        while outcome.status == "interrupted" and self.on_pause:
            self._still_holds(lease)  # a decision may sign and send: not on a lost lease
            if not self.on_pause(executor, outcome):
                break
            outcome = await executor.resume(lease.run_id)
        return outcome

    def _still_holds(self, lease: Lease) -> None:
        held = self.leases.holder(lease.run_id)
        if held is None or (held.owner, held.epoch) != (lease.owner, lease.epoch):
            raise LeaseLost(
                lease.run_id,
                lease.owner,
                lease.epoch,
                held.owner if held else None,
                held.epoch if held else None,
                held.expires_at if held else None,
            )

    def work(
        self, *, runs: int | None = None, idle_exit: float | None = None, poll: float = 0.5
    ) -> list[Worked]:
        """Drive runs until ``runs`` are done or nothing came for ``idle_exit`` seconds."""
        done: list[Worked] = []
        idle_since = time.monotonic()
        while runs is None or len(done) < runs:
            worked = self.work_one()
            if worked is not None:
                done.append(worked)
                idle_since = time.monotonic()
                continue
            if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                break
            time.sleep(poll)
        return done

    def close(self) -> None:
        """Release the deployer key's lease and close the store's connections."""
        if self._key is not None:
            key, self._key = self._key, None
            key.__exit__(None, None, None)
        _close(self.leases, self.store)


class KeyInUse(VouchError):
    """Another live worker on the same run store sends from the same deployer key."""


def key_slot(settings: VouchSettings) -> tuple[str, str]:
    """The lease name for the worker's deployer key on its chain, and the key's address.

    The chain is named by a digest of its RPC URL (a hosted RPC's URL may
    carry an API key) or by the managed anvil's chain id.
    """
    if settings.deployer_keystore is not None:
        try:
            found = json.loads(settings.deployer_keystore.read_text()).get("address", "")
        except (OSError, ValueError) as exc:
            raise KeyInUse(
                f"cannot read the deployer keystore {settings.deployer_keystore}: {exc}"
            ) from None
        address = "0x" + str(found).lower().removeprefix("0x")
    else:
        from eth_account import Account

        from vouch.cre_adapters.evm import ANVIL_DEV_KEYS

        address = Account.from_key(ANVIL_DEV_KEYS[0]).address.lower()
    if settings.rpc_url:
        chain = "rpc-" + hashlib.sha256(settings.rpc_url.encode()).hexdigest()[:16]
    else:
        chain = f"anvil-{settings.chain_id}"
    return f"@key/{chain}/{address}", address


def _close(*things: object) -> None:
    for thing in things:
        close = getattr(thing, "close", None)
        if callable(close):
            close()
