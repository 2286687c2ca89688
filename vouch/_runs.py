"""`vouch runs`: list agent runs, show one, approve or reject what a paused run waits for."""

from __future__ import annotations

import asyncio
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


def make_runs_app(home: Callable[[], Path]) -> typer.Typer:
    """The ``runs`` sub-app; ``home`` gives the state folder (the CLI's --home/VOUCH_HOME)."""
    app = typer.Typer(
        help="Agent runs: list, show, approve or reject paused ones.", no_args_is_help=True
    )

    def store(db: Path | None) -> SQLiteCheckpointStore:
        return SQLiteCheckpointStore(db or home() / "runs.db")

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
                k: v.model_dump(mode="json", exclude={"spans"}) for k, v in steps.items()
            }
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

    @app.command("approve")
    def approve(
        run_id: str,
        db: DbOption = None,
        key: Annotated[str | None, typer.Option(help="Only this pending action.")] = None,
        note: str = "",
        resume: Annotated[bool, typer.Option(help="Resume the run right away.")] = True,
    ) -> None:
        """Approve what the run waits for, then resume it from where it paused."""
        _decide(store(db), run_id, key, True, note, resume)

    @app.command("reject")
    def reject(
        run_id: str,
        reason: Annotated[str, typer.Option(help="Why; recorded with the run.")] = "",
        db: DbOption = None,
        key: Annotated[str | None, typer.Option(help="Only this pending action.")] = None,
    ) -> None:
        """Reject what the run waits for; the run ends as rejected (a normal outcome)."""
        _decide(store(db), run_id, key, False, reason, True)

    return app


def _decide(
    checkpoints: SQLiteCheckpointStore,
    run_id: str,
    key: str | None,
    approved: bool,
    note: str,
    resume: bool,
) -> None:
    run = checkpoints.load_run(run_id)
    if run.status != "interrupted":
        raise CheckpointError(f"run {run_id} is {run.status}, not waiting for a decision")
    keys = [p.key for p in run.pending if key is None or p.key == key]
    if not keys:
        raise CheckpointError(f"run {run_id} has no pending action {key}")
    executor = Executor({}, store=checkpoints)
    for k in keys:
        executor.decide(run_id, k, approved, note, by="cli")
    console.print(
        f"{'approved' if approved else 'rejected'}: {len(keys)} action(s) of run {run_id}"
    )
    if resume:
        _report(_resume(checkpoints, run))


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
    if outcome.status in ("failed", "stopped"):
        raise typer.Exit(1)
