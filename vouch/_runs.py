"""`vouch runs`: list agent runs, show one, approve or reject what a paused run waits for, resume.

``runs list`` shows each run's real state (``_recovery.describe``): waiting for
a decision, decided but not acted on, interrupted in step X (its process is
gone), failed with what resuming does. ``runs resume RUN`` finishes what can
finish (``_recovery.plan_resume``): it continues the run from its checkpoint,
or refunds a trade that can no longer settle, or says there is nothing to do;
twice in a row, the second does nothing new. Deciding is idempotent too: a
decision already recorded (in the checkpoint or in the log) is not signed,
sent or logged again.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import importlib
import importlib.util
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # start-up (issue 19): the `runs` commands import these when they run
    from vouch.agents import CheckpointStore, Executor, RunOutcome, RunRecord

    from ._settings import VouchSettings

console = Console()
DbOption = Annotated[
    Path | None, typer.Option("--db", help="Checkpoint database (default: <home>/runs.db).")
]
RunIdArgument = Annotated[
    str, typer.Argument(metavar="RUN_ID", help="The run's id, as `vouch runs list` shows it.")
]


def load_entrypoint(spec: str) -> Callable[[Any], Executor]:
    """``"module:function"`` or ``"path/to/file.py:function"`` -> the function.

    The entrypoint comes from the run's checkpoint: it is code the run's owner
    registered, trusted like the rest of the state folder.
    """
    from vouch.agents import CheckpointError

    target, _, name = spec.rpartition(":")
    if target.endswith(".py"):
        module_spec = importlib.util.spec_from_file_location(Path(target).stem, target)
        if module_spec is None or module_spec.loader is None:
            raise CheckpointError(f"cannot load entrypoint file {target}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    factory: Callable[[Any], Executor] = getattr(module, name)
    return factory


def make_runs_app(settings: Callable[[], VouchSettings]) -> typer.Typer:
    """The ``runs`` sub-app; ``settings`` gives the CLI's settings (--home/VOUCH_HOME...)."""
    app = typer.Typer(
        help="Agent runs: list, show, approve or reject paused ones.", no_args_is_help=True
    )

    def db_path(db: Path | None) -> Path:
        return db or settings().home / "runs.db"

    def store(db: Path | None) -> CheckpointStore:
        from vouch.agents import open_checkpoints

        return open_checkpoints(str(db) if db else settings().runs_location)

    @app.command("list")
    def list_runs(db: DbOption = None) -> None:
        """Every run, newest first, with its real state and the command that moves it on."""
        from vouch.agents import run_leases

        from ._recovery import RunLock, describe

        table = Table("run", "status", "goal", "steps", "state / what to do")
        checkpoints = store(db)
        leases = run_leases(checkpoints)
        for run in checkpoints.list_runs():
            state = describe(checkpoints, run, RunLock(db_path(db), run.run_id))
            held = leases.holder(run.run_id) if run.status == "running" else None
            if held is not None:
                state = f"driven by worker {held.owner} (lease epoch {held.epoch})"
            elif run.status == "running" and not run.steps_executed and run.plan is None:
                state = "queued: `vouch runs work` on any worker takes it"
            status = run.status
            if status == "running" and state.startswith("interrupted"):
                status = "interrupted"
            table.add_row(run.run_id, status, run.goal[:50], str(run.steps_executed), state)
        console.print(table)

    @app.command("resume")
    def resume(
        run_id: RunIdArgument,
        db: DbOption = None,
        wait: Annotated[
            bool, typer.Option(help="A refund waits for the trade's deadline instead of failing.")
        ] = False,
    ) -> None:
        """Finish what the run can: continue it from its checkpoint, or refund its trade."""
        _resume_cmd(store(db), db_path(db), settings(), run_id, wait)

    @app.command("submit")
    def submit_cmd(
        goal: Annotated[str, typer.Argument(help="What the settlement agent is asked.")],
        run_id: Annotated[str | None, typer.Option(help="The run's id (default: random).")] = None,
    ) -> None:
        """Queue a settlement run for `vouch runs work` (any host sharing VOUCH_RUNS_URL)."""
        from ._workers import submit

        record = submit(settings(), goal, run_id)
        console.print(f"run {record.run_id} queued in {_where(settings())}")

    @app.command("work")
    def work_cmd(
        owner: Annotated[str | None, typer.Option(help="Lease owner (default host:pid).")] = None,
        lease: Annotated[float, typer.Option(min=1, help="Lease seconds (renewed at 1/3).")] = 30,
        runs: Annotated[int | None, typer.Option(help="Stop after this many runs.")] = None,
        idle_exit: Annotated[
            float | None, typer.Option(help="Stop after this many idle seconds.")
        ] = None,
        wait_for_key: Annotated[
            float,
            typer.Option(
                min=0, help="Wait this long for a live worker on the same deployer key to end."
            ),
        ] = 0,
    ) -> None:
        """Take runs by lease and drive them; a dead worker's runs go to another after its lease."""
        from ._workers import Worker

        worker = Worker(settings(), owner, lease, wait_for_key=wait_for_key)
        console.print(f"worker {worker.owner} on {_where(settings())} (lease {lease:g} s)")
        try:
            for worked in worker.work(runs=runs, idle_exit=idle_exit):
                _report_worked(worked.outcome, worked.epoch, worked.error)
        finally:
            worker.close()

    @app.command("show")
    def show(
        run_id: RunIdArgument,
        db: DbOption = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="The run, its steps and usage as JSON.")
        ] = False,
    ) -> None:
        """One run: plan, steps, pending actions, reason, trace hash."""
        checkpoints = store(db)
        run, steps = checkpoints.load_run(run_id), checkpoints.load_steps(run_id)
        if as_json:
            body = run.model_dump(mode="json")
            body["steps"] = {
                k: v.model_dump(mode="json", exclude={"spans", "journal"}) for k, v in steps.items()
            }
            body["usage"] = checkpoints.usage(run_id).model_dump(mode="json")
            print(json.dumps(body, indent=2))
            return
        console.print(f"run {run.run_id}: [bold]{run.status}[/] {run.reason}")
        console.print(f"goal: {run.goal}\ntrace hash: {run.trace_hash}")
        for step in run.plan.steps if run.plan else []:
            record = steps.get(step.id)
            state = record.status if record else "pending"
            console.print(f"  {step.id:<16} {state:<9} {step.agent or step.capability}")
        for action in run.pending:
            console.print(f"  waiting: {action.kind} {action.summary} (key {action.key})")
        _usage_table(checkpoints, run_id)

    @app.command("approve")
    def approve(
        run_id: RunIdArgument,
        db: DbOption = None,
        key: Annotated[str | None, typer.Option(help="Only this pending action.")] = None,
        note: Annotated[str, typer.Option(help="A note recorded with the decision.")] = "",
        resume: Annotated[bool, typer.Option(help="Resume the run right away.")] = True,
    ) -> None:
        """Approve what the run waits for, then resume it from where it paused."""
        _decide(store(db), db_path(db), settings(), run_id, key, True, note, resume)

    @app.command("reject")
    def reject(
        run_id: RunIdArgument,
        reason: Annotated[str, typer.Option(help="Why; recorded with the run.")] = "",
        db: DbOption = None,
        key: Annotated[str | None, typer.Option(help="Only this pending action.")] = None,
    ) -> None:
        """Reject what the run waits for; the run ends as rejected (a normal outcome)."""
        _decide(store(db), db_path(db), settings(), run_id, key, False, reason, True)

    return app


def _decide(
    checkpoints: CheckpointStore,
    db: Path,
    settings: VouchSettings,
    run_id: str,
    key: str | None,
    approved: bool,
    note: str,
    resume: bool,
) -> None:
    from vouch.agents import CheckpointError

    from ._flow import use_settings
    from ._recovery import RunLock, describe

    run = checkpoints.load_run(run_id)
    if run.status != "interrupted":
        state = describe(checkpoints, run, RunLock(db, run_id))
        raise CheckpointError(f"run {run_id} is {run.status}, not waiting for a decision: {state}")
    actions = [p for p in run.pending if key is None or p.key == key]
    if not actions:
        raise CheckpointError(f"run {run_id} has no pending action {key}")
    use_settings(settings)
    with run_hold(checkpoints, db, run_id):  # deciding and resuming: one holder at a time
        _decide_held(checkpoints, db, settings, run_id, actions, approved, note, resume)


def _decide_held(
    checkpoints: CheckpointStore,
    db: Path,
    settings: VouchSettings,
    run_id: str,
    actions: list[Any],
    approved: bool,
    note: str,
    resume: bool,
) -> None:
    from vouch.agents import Executor

    from ._flow import Services, is_settlement, sign_decision

    executor = Executor({}, store=checkpoints)
    decisions = checkpoints.load_decisions(run_id)
    new = 0
    for action in actions:
        earlier = decisions.get(action.key)
        if earlier is not None:
            said = "approved" if earlier.approved else "rejected"
            console.print(
                f"  already {said} by {earlier.by or 'someone'}: nothing new signed or logged"
            )
            continue
        by = getpass.getuser()
        if is_settlement(action):  # signed with the approver key, onchain where the gate needs it
            signed = sign_decision(Services(settings), run_id, action, approved, note)
            by = signed["approver"]
            _say_signed(signed)
            approved = signed["decision"] == "approved"  # a logged decision stands
        executor.decide(run_id, action.key, approved, note, by=by)
        new += 1
    console.print(
        f"{'approved' if approved else 'rejected'}: {new} new decision(s) on run {run_id}"
    )
    if resume:
        _resume_cmd(checkpoints, db, settings, run_id, False, held=True)


def _say_signed(signed: dict[str, Any]) -> None:
    if signed.get("already"):
        where = "already in the log: nothing new signed, sent or logged"
    elif signed["decision"] == "rejected":
        where = "signed rejection logged; the escrow is refundable after its deadline"
    elif signed["tx_hash"]:
        where = f"recorded onchain in tx {signed['tx_hash']}"
    elif signed.get("needs_approval"):
        where = "logged; the gate needs it onchain but has no approval transaction"
    else:
        where = "logged (at or below the gate's threshold: no onchain approval needed)"
    console.print(
        f"  {signed['decision']} trade #{signed['trade_id']}, signed by approver "
        f"{signed['approver']}; {where}"
    )


def _usage_table(checkpoints: CheckpointStore, run_id: str) -> None:
    """Tokens and USD per step and agent, and the run's total."""
    usage = checkpoints.usage(run_id)
    table = Table("spent by", "calls", "tokens in", "tokens out", "USD", title="usage")
    rows = [(f"step {k}", v) for k, v in usage.by_step.items()]
    rows += [(f"agent {k}", v) for k, v in usage.by_agent.items()]
    unpriced = {r.name for records in usage.calls.values() for r in records if not r.priced}
    for name, totals in [*rows, ("run total", usage.total)]:
        table.add_row(
            name,
            str(totals.calls),
            f"{totals.prompt_tokens:,}",
            f"{totals.completion_tokens:,}",
            f"{totals.usd}",
        )
    console.print(table)
    if unpriced:
        console.print(
            f"  unpriced (counted as USD 0): {', '.join(sorted(unpriced))}; "
            "price them in model_prices to see their cost"
        )


def _resume(checkpoints: CheckpointStore, run: RunRecord) -> RunOutcome:
    from vouch.agents import CheckpointError

    if run.entrypoint is None:
        raise CheckpointError(
            f"run {run.run_id} has no entrypoint to rebuild its agents; resume it from its own "
            "program with Executor.resume(run_id)"
        )
    import asyncio

    executor = load_entrypoint(run.entrypoint)(checkpoints)
    return asyncio.run(executor.resume(run.run_id))


def _where(settings: VouchSettings) -> str:
    """The run store, printable (a URL without its password)."""
    from vouch.verifier._store import redact

    if settings.runs_url:
        return redact(settings.runs_url)
    return settings.runs_location


def _report_worked(outcome: RunOutcome | None, epoch: int, error: str = "") -> None:
    if outcome is None:  # lost the lease: another worker drives the run now
        console.print(f"[yellow]stopped[/]: {error}")
        return
    taken = f" (taken over, lease epoch {epoch})" if epoch > 1 else ""
    console.print(f"run {outcome.run_id}: [bold]{outcome.status}[/] {outcome.reason}{taken}")


def _report(outcome: RunOutcome) -> None:
    from ._flow import SETTLE_ACTION

    console.print(f"run {outcome.run_id}: [bold]{outcome.status}[/] {outcome.reason}")
    settled = outcome.outputs.get(SETTLE_ACTION)
    if isinstance(settled, dict) and "tx_hash" in settled:
        console.print(
            f"  settlement {settled['status']} in block {settled['block_number']} "
            f"(tx {settled['tx_hash']}); execution {settled['execution_id']}"
        )
    if outcome.status in ("failed", "stopped"):
        raise typer.Exit(1)


RESUME_LEASE = 30.0
"""Seconds of the lease ``runs resume|approve`` take on a run in a shared store (renewed at 1/3)."""


@contextlib.contextmanager
def run_hold(checkpoints: CheckpointStore, db: Path, run_id: str) -> Iterator[None]:
    """Hold the run for the block: its lease in the run store (and, for a file, the file lock).

    Workers take runs by lease, on any host sharing the store: the command
    takes the run's lease too (as a worker does), renews it while it works,
    fences its writes by it and releases it at the end, so it never drives a
    run a worker holds. With a PostgreSQL store that is all (a local file lock
    is not seen by other hosts); with a SQLite file it also takes the
    crash-safe file lock (``RunLock``) that ``vouch run`` holds.

    Raises:
        RunBusy: another process holds the run (the message names the holder
            and when its lease expires).
    """
    from vouch.agents import LeaseKeeper, RunLeases, run_leases

    from ._recovery import RunBusy, RunLock

    shared = isinstance(checkpoints, RunLeases)
    with contextlib.ExitStack() as stack:
        if not shared:  # a local file: the file lock, then the file's leases
            stack.enter_context(RunLock(db, run_id).held())
        leases = run_leases(checkpoints)
        if not shared:
            stack.callback(getattr(leases, "close", lambda: None))
        from ._workers import default_owner

        lease = leases.claim(run_id, default_owner(), RESUME_LEASE)
        if lease is None:
            held = leases.holder(run_id)
            if held is None:
                raise RunBusy(f"run {run_id} was held a moment ago and is free now: run it again")
            left = held.expires_at - time.time()
            until = datetime.datetime.fromtimestamp(held.expires_at, datetime.UTC)
            raise RunBusy(
                f"run {run_id} is being driven by {held.owner} (lease epoch {held.epoch}); its "
                f"lease expires at {until:%H:%M:%S} UTC (in {max(left, 0):.0f} s) unless "
                "renewed: wait for it to end, or stop that worker and retry after its lease expires"
            )
        with LeaseKeeper(leases, lease, RESUME_LEASE), checkpoints.fenced(lease):
            yield


def _resume_cmd(
    checkpoints: CheckpointStore,
    db: Path,
    settings: VouchSettings,
    run_id: str,
    wait: bool,
    held: bool = False,
) -> None:
    """Resume, refund or say there is nothing to do, holding the run throughout (``run_hold``)."""
    from vouch.agents import CheckpointError
    from vouch.verifier import open_log

    from ._flow import use_settings
    from ._recovery import (
        chain_parts,
        interrupted_says,
        plan_resume,
        refunder,
        settlement_of,
        stopped_hint,
    )

    use_settings(settings)
    run = checkpoints.load_run(run_id)
    with contextlib.nullcontext() if held else run_hold(checkpoints, db, run_id):
        steps = checkpoints.load_steps(run_id)
        found = settlement_of(run, steps)
        trade, now, parts = None, 0, None
        if found.escrow is not None:
            parts = chain_parts(settings, start=True)
            book = refunder(parts, open_log(settings.log_location)).book
            trade, now = book.trade(found.escrow.job.trade_id), book.now()
        decided = set(checkpoints.load_decisions(run_id))
        action = plan_resume(run, steps, decided, trade, now)
        if action == "decide":
            raise CheckpointError(
                f"run {run_id} waits for a decision: `vouch runs approve|reject {run_id}`"
            )
        if action == "nothing":
            where = f"; trade #{trade.trade_id} is {trade.status}" if trade else ""
            console.print(f"run {run_id} is {run.status}: nothing to resume{where}")
            return
        if action == "refund":
            assert parts is not None and found.escrow is not None
            _refund_run(checkpoints, settings, run, steps, parts, wait)
            return
        if run.status == "failed":  # its effects can still complete: run the failed step again
            run.status, run.reason, run.error = "running", "", ""
            checkpoints.save_run(run)
        with interrupted_says(lambda: stopped_hint(checkpoints, run_id)):
            outcome = _resume(checkpoints, run)
    _report(outcome)


def _refund_run(
    checkpoints: CheckpointStore,
    settings: VouchSettings,
    run: RunRecord,
    steps: dict[str, Any],
    parts: Any,
    wait: bool,
) -> None:
    """Refund the run's trade (it can no longer settle) and close the run."""
    from vouch.agents import CheckpointError
    from vouch.verifier import open_log

    from ._recovery import close_refunded, escrow_key, refunder, settlement_of

    found = settlement_of(run, steps)
    assert found.escrow is not None
    key = escrow_key(run, steps, found)
    if key is None:
        raise CheckpointError(f"run {run.run_id} has no escrow key to act as its parties")
    refunds = refunder(parts, open_log(settings.log_location))
    entry, new = refunds.refund(found.escrow.job.trade_id, key, wait)
    _say_refund(entry.payload, entry.seq, new)
    close_refunded(checkpoints, run, entry.payload)


def _say_refund(payload: dict[str, Any], seq: int, new: bool) -> None:
    if not new:
        console.print(
            f"trade #{payload['trade_id']} was already refunded (log entry #{seq}, tx "
            f"{payload['tx_hash']}): nothing new sent or logged"
        )
        return
    console.print(
        f"refunded trade #{payload['trade_id']} in tx {payload['tx_hash']} (block "
        f"{payload['block_number']}): {payload['base_amount']} base back to the seller, "
        f"{payload['quote_amount']} quote back to the buyer; why: {payload['reason']}; "
        f"logged as entry #{seq}"
    )
