"""`vouch runs`: list agent runs, show one, approve or reject what a paused run waits for."""

from __future__ import annotations

import asyncio
import getpass
import importlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agents import CheckpointError, Executor, RunOutcome, RunRecord, SQLiteCheckpointStore

from ._flow import SETTLE_ACTION, Services, is_settlement, sign_decision, use_settings
from ._settings import VouchSettings

console = Console()
DbOption = Annotated[
    Path | None, typer.Option("--db", help="Checkpoint database (default: <home>/runs.db).")
]


def load_entrypoint(spec: str) -> Callable[[Any], Executor]:
    """``"module:function"`` or ``"path/to/file.py:function"`` -> the function.

    The entrypoint comes from the run's checkpoint: it is code the run's owner
    registered, trusted like the rest of the state folder.
    """
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

    def store(db: Path | None) -> SQLiteCheckpointStore:
        return SQLiteCheckpointStore(db or settings().home / "runs.db")

    @app.command("list")
    def list_runs(db: DbOption = None) -> None:
        """Every run, newest first, with what a paused one waits for."""
        table = Table("run", "status", "goal", "steps", "waiting for / reason")
        for run in store(db).list_runs():
            waiting = "; ".join(p.summary for p in run.pending) or run.reason
            table.add_row(run.run_id, run.status, run.goal[:50], str(run.steps_executed), waiting)
        console.print(table)

    @app.command("show")
    def show(
        run_id: str, db: DbOption = None, as_json: bool = typer.Option(False, "--json")
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
        run_id: str,
        db: DbOption = None,
        key: Annotated[str | None, typer.Option(help="Only this pending action.")] = None,
        note: str = "",
        resume: Annotated[bool, typer.Option(help="Resume the run right away.")] = True,
    ) -> None:
        """Approve what the run waits for, then resume it from where it paused."""
        _decide(store(db), settings(), run_id, key, True, note, resume)

    @app.command("reject")
    def reject(
        run_id: str,
        reason: Annotated[str, typer.Option(help="Why; recorded with the run.")] = "",
        db: DbOption = None,
        key: Annotated[str | None, typer.Option(help="Only this pending action.")] = None,
    ) -> None:
        """Reject what the run waits for; the run ends as rejected (a normal outcome)."""
        _decide(store(db), settings(), run_id, key, False, reason, True)

    return app


def _decide(
    checkpoints: SQLiteCheckpointStore,
    settings: VouchSettings,
    run_id: str,
    key: str | None,
    approved: bool,
    note: str,
    resume: bool,
) -> None:
    run = checkpoints.load_run(run_id)
    if run.status != "interrupted":
        raise CheckpointError(f"run {run_id} is {run.status}, not waiting for a decision")
    actions = [p for p in run.pending if key is None or p.key == key]
    if not actions:
        raise CheckpointError(f"run {run_id} has no pending action {key}")
    use_settings(settings)
    executor = Executor({}, store=checkpoints)
    for action in actions:
        by = getpass.getuser()
        if is_settlement(action):  # signed with the approver key, onchain where the gate needs it
            signed = sign_decision(Services(settings), run_id, action, approved, note)
            by = signed["approver"]
            _say_signed(signed)
        executor.decide(run_id, action.key, approved, note, by=by)
    console.print(
        f"{'approved' if approved else 'rejected'}: {len(actions)} action(s) of run {run_id}"
    )
    if resume:
        _report(_resume(checkpoints, run))


def _say_signed(signed: dict[str, Any]) -> None:
    if signed["decision"] == "rejected":
        where = "signed rejection logged; the escrow is refundable after its deadline"
    elif signed["tx_hash"]:
        where = f"recorded onchain in tx {signed['tx_hash']}"
    else:
        where = "logged (at or below the gate's threshold: no onchain approval needed)"
    console.print(
        f"  {signed['decision']} trade #{signed['trade_id']}, signed by approver "
        f"{signed['approver']}; {where}"
    )


def _usage_table(checkpoints: SQLiteCheckpointStore, run_id: str) -> None:
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


def _resume(checkpoints: SQLiteCheckpointStore, run: RunRecord) -> RunOutcome:
    if run.entrypoint is None:
        raise CheckpointError(
            f"run {run.run_id} has no entrypoint to rebuild its agents; resume it from its own "
            "program with Executor.resume(run_id)"
        )
    executor = load_entrypoint(run.entrypoint)(checkpoints)
    return asyncio.run(executor.resume(run.run_id))


def _report(outcome: RunOutcome) -> None:
    console.print(f"run {outcome.run_id}: [bold]{outcome.status}[/] {outcome.reason}")
    settled = outcome.outputs.get(SETTLE_ACTION)
    if isinstance(settled, dict) and "tx_hash" in settled:
        console.print(
            f"  settlement {settled['status']} in block {settled['block_number']} "
            f"(tx {settled['tx_hash']}); execution {settled['execution_id']}"
        )
    if outcome.status in ("failed", "stopped"):
        raise typer.Exit(1)
