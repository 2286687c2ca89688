"""The `vouch` command line."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agents import AgentError
from cre_adapters import (
    FAULT_MODES,
    CreError,
    DonConfig,
    FaultSpec,
    load_key,
    read_password,
    serve,
    set_fault,
)
from verifier import AttestationLog, VerifierError

from ._anchor import anchor_log, prove_entry
from ._audit import run_audit, run_replay
from ._crosschain import DEFAULT_MESSAGE, run_cross_chain_demo
from ._demo import DEFAULT_GOAL, run_settlement_demo
from ._errors import VouchError
from ._runs import make_runs_app
from ._settings import VouchSettings, load_settings
from ._stack import Stack

app = typer.Typer(
    help="vouch: verifiable onchain agent workflows.", no_args_is_help=True, add_completion=False
)
chain_app = typer.Typer(help="The local chain (anvil) vouch manages.", no_args_is_help=True)
don_app = typer.Typer(help="The local oracle network (DON).", no_args_is_help=True)
node_app = typer.Typer(help="One oracle node (started by `vouch don up`).", no_args_is_help=True)
demo_app = typer.Typer(help="End-to-end demos.", no_args_is_help=True)
log_app = typer.Typer(
    help="The attestation log: export, import, anchor, prove.", no_args_is_help=True
)
app.add_typer(chain_app, name="chain")
app.add_typer(don_app, name="don")
app.add_typer(node_app, name="node")
app.add_typer(demo_app, name="demo")
app.add_typer(log_app, name="log")
workflow_app = typer.Typer(help="Workflows from spec files (TOML/JSON/YAML).", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")
app.add_typer(make_runs_app(lambda: _settings()), name="runs")

console = Console()
_overrides: dict[str, Any] = {}


@app.callback()
def _options(
    home: Annotated[Path | None, typer.Option(help="State folder (env VOUCH_HOME).")] = None,
    rpc_url: Annotated[
        str | None,
        typer.Option(help="Use this EVM RPC instead of a managed anvil (env VOUCH_RPC_URL)."),
    ] = None,
) -> None:
    _overrides.update(home=home, rpc_url=rpc_url)


def _settings() -> VouchSettings:
    return load_settings(**_overrides)


@chain_app.command("up")
def chain_up() -> None:
    """Start the managed anvil (from its saved state), or check the configured RPC."""
    chain = Stack(_settings()).chain_up()
    console.print(f"chain {chain.chain_id} at {chain.url}")


@chain_app.command("down")
def chain_down() -> None:
    """Stop the managed anvil; its state is kept."""
    stopped = Stack(_settings()).chain_down()
    console.print("anvil stopped" if stopped else "no managed anvil was running")


@chain_app.command("status")
def chain_status() -> None:
    """Show whether the chain answers."""
    chain = Stack(_settings()).running_chain()
    if chain is None:
        console.print("chain: [red]down[/] (start it with `vouch chain up`)")
        raise typer.Exit(1)
    console.print(f"chain {chain.chain_id} at {chain.url}: [green]up[/]")


@app.command()
def deploy(
    force: Annotated[
        bool, typer.Option(help="Deploy anew even if a matching deployment is live.")
    ] = False,
) -> None:
    """Compile and deploy Forwarder, SettlementGate and test tokens; write the manifest."""
    settings = _settings()
    stack = Stack(settings)
    chain = stack.chain_up()
    deployment, fresh = stack.deploy(chain, stack.artifacts(), force=force)
    for name, address in deployment.contracts.items():
        console.print(f"{name:16} {address}")
    console.print(
        f"{'deployed' if fresh else 'reused'}; manifest {settings.deployment_path(chain.chain_id)}"
    )


@don_app.command("up")
def don_up(
    nodes: Annotated[
        int | None, typer.Option(help="Number of nodes n (env VOUCH_NODES; 4..31).")
    ] = None,
    f: Annotated[
        int | None, typer.Option("--f", help="Faulty nodes tolerated (n >= 3f+1; env VOUCH_F).")
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option(
            help="DON sources file (.toml/.json/.yaml): each node's data source "
            "(set VOUCH_DON_SOURCES instead to keep it for every command that starts nodes)."
        ),
    ] = None,
) -> None:
    """Start the oracle nodes for the current deployment (redeploys if n or f changed)."""
    _overrides.update(nodes=nodes, f=f, don_sources=sources)
    stack = Stack(_settings())
    chain = stack.chain_up()
    deployment, _ = stack.deploy(chain, stack.artifacts())
    don, started = stack.don_up(deployment)
    console.print(
        f"{len(don.nodes)} nodes {'started' if started else 'already running'} (f={don.f})"
    )
    for node in don.nodes:
        if node.source.kind != "mock-price" or node.fault.mode != "none":
            console.print(f"  {node.name}: source {node.source.kind}, fault {node.fault.mode}")


@don_app.command("down")
def don_down() -> None:
    """Stop the oracle nodes."""
    stopped = Stack(_settings()).don_down()
    console.print(f"stopped {', '.join(stopped)}" if stopped else "no nodes were running")


@don_app.command("status")
def don_status() -> None:
    """Show every node: key, URL, health, last round."""
    stack = Stack(_settings())
    if not stack.don_file.exists():
        console.print("no DON configured yet: run `vouch don up`")
        raise typer.Exit(1)
    don = DonConfig.load(stack.don_file)
    rows = stack.supervisor(don).status()
    table = Table("node", "signer", "url", "pid", "health", "fault", "rounds", "last round")
    for row in rows:
        health = "[green]ok[/]" if row.healthy else f"[red]{row.detail}[/]"
        fault = row.fault if row.fault == "none" else f"[yellow]{row.fault}[/]"
        table.add_row(
            row.name,
            row.address,
            row.url,
            str(row.pid or "-"),
            health,
            fault,
            str(row.rounds),
            _last_round(row.last_round, row.last_round_at),
        )
    console.print(table)
    console.print(f"n={len(don.nodes)}, f={don.f}, quorum 2f+1={don.quorum}")
    if not all(row.healthy for row in rows):
        raise typer.Exit(1)


class FaultChoice(StrEnum):
    """The fault modes of cre_adapters.FaultMode, as CLI choices."""

    none = "none"
    down = "down"
    slow = "slow"
    flaky = "flaky"
    stale = "stale"
    lie = "lie"
    equivocate = "equivocate"
    bad_signature = "bad-signature"
    wrong_key = "wrong-key"


assert tuple(FaultChoice) == FAULT_MODES, "FaultChoice must list cre_adapters.FAULT_MODES"


def _last_round(round_id: str | None, at: float | None) -> str:
    if round_id is None:
        return "-"
    import time

    return f"{round_id[:14]} ({time.time() - at:.0f}s ago)" if at else round_id[:14]


@don_app.command("fault")
def don_fault(
    node: Annotated[str, typer.Argument(help="Node name, e.g. node-3.")],
    mode: Annotated[FaultChoice, typer.Argument(help="The fault mode.")],
    delay: Annotated[float, typer.Option(help="slow: seconds added.")] = 2.0,
    error_rate: Annotated[float, typer.Option(help="flaky: share of failed requests.")] = 0.5,
    stale_by: Annotated[int, typer.Option(help="stale: seconds in the past.")] = 3600,
    lie_bps: Annotated[int, typer.Option(help="lie/equivocate: offset in bps.")] = 5000,
) -> None:
    """Make a running node misbehave (or `none` to heal it), via its loopback admin endpoint."""
    stack = Stack(_settings())
    spec = FaultSpec.model_validate(
        {
            "mode": mode.value,
            "delay": delay,
            "error_rate": error_rate,
            "stale_by": stale_by,
            "lie_bps": lie_bps,
        }
    )
    applied = set_fault(DonConfig.load(stack.don_file), node, spec)
    console.print(f"{node}: fault mode {applied.mode}")


@workflow_app.command("run")
def workflow_run(
    file: Annotated[Path, typer.Argument(help="Workflow spec (.toml, .json, .yaml).")],
    log: Annotated[
        Path | None,
        typer.Option(
            help="Log for feed rounds (default: HOME/feeds.db for a log target, the log "
            "`vouch audit` reads for a feeds target); refused for a settlement target, "
            "which always writes to the log `vouch audit` reads."
        ),
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option(
            help="DON sources file (.toml/.json/.yaml): each node's data source "
            "(set VOUCH_DON_SOURCES instead to keep it for every command that starts nodes)."
        ),
    ] = None,
    max_firings: Annotated[
        int | None,
        typer.Option(
            min=1, help="Stop after this many trigger firings (overrides the spec's runs)."
        ),
    ] = None,
) -> None:
    """Run a workflow spec against the local DON: trigger -> capabilities -> consensus -> target.

    An http trigger serves POST /trigger (loopback, bearer token from the trigger's
    token_file, default HOME/workflow.token) and runs one execution per request.
    Exit code 1 when an execution failed or its report was refused onchain.
    """
    import asyncio

    from cre_adapters import FeedWorkflow, ProposalTrigger, ReportDelivery, WorkflowSpec

    spec = WorkflowSpec.load(file)
    if log is not None and spec.target.kind == "settlement":
        raise VouchError(
            f"--log {log}: a settlement writes to HOME/attestations.db, the log `vouch audit` "
            "reads; drop --log (it is for feed rounds), or set VOUCH_HOME for another home"
        )
    if max_firings is not None and not isinstance(spec.trigger, ProposalTrigger):
        trigger = spec.trigger.model_copy(update={"runs": max_firings})
        spec = spec.model_copy(update={"trigger": trigger})
    _overrides.update(don_sources=sources)
    settings = _settings()
    if spec.consensus.deadline is not None:  # the spec's deadline wins, on every path
        settings = settings.model_copy(update={"node_timeout": spec.consensus.deadline})
    if isinstance(spec.trigger, ProposalTrigger):  # the spec guarantees a settlement target
        outcome = run_settlement_demo(settings, console, spec.trigger.goal)
        raise typer.Exit(0 if outcome is not None and outcome.status == "settled" else 1)
    if spec.target.kind == "settlement":  # an http trigger: one settlement per request
        from ._http_settlement import serve_settlements

        outcomes = serve_settlements(settings, console, spec)
        raise typer.Exit(_workflow_summary(spec.name, outcomes))
    stack = Stack(settings)
    chain = stack.chain_up()
    artifacts = stack.artifacts()
    deployment, _ = stack.deploy(chain, artifacts)
    don, _ = stack.don_up(deployment)
    onchain = spec.target.kind == "feeds"
    journal = AttestationLog(log or (settings.log_path if onchain else settings.home / "feeds.db"))
    say = lambda kind, data: console.print(f"{kind}: {data}")  # noqa: E731
    delivery = (
        ReportDelivery(deployment, artifacts, stack.writer(chain, artifacts), journal, on_event=say)
        if onchain
        else None
    )
    runner = FeedWorkflow(
        spec,
        don,
        journal,
        rpc_url=chain.url,
        timeout=settings.node_timeout,
        on_event=say,
        delivery=delivery,
        workflow=_feed_workflow(deployment) if onchain else None,
        token_file=settings.home / "workflow.token",
    )
    raise typer.Exit(_workflow_summary(spec.name, asyncio.run(runner.run())))


def _feed_workflow(deployment: Any) -> Any:
    if deployment.feed_workflow is None:
        raise VouchError("this deployment has no FeedConsumer; run `vouch deploy --force`")
    return deployment.feed_workflow


def _workflow_summary(name: str, outcomes: list[dict[str, Any]]) -> int:
    """Print the run count; 1 if any execution failed or was refused onchain."""
    bad = [o for o in outcomes if o.get("status") in ("failed", "refused", "rejected")]
    console.print(
        f"workflow {name}: {len(outcomes)} run(s) done"
        + (f", {len(bad)} failed or refused" if bad else "")
    )
    return 1 if bad else 0


@node_app.command("run")
def node_run(
    don: Annotated[Path, typer.Option(help="DON config file.")],
    node: Annotated[str, typer.Option(help="This node's name in the DON config.")],
    password_file: Annotated[
        Path | None, typer.Option(help="File with the keystore password.")
    ] = None,
) -> None:
    """Run one oracle node in the foreground."""
    settings = _settings()
    config = DonConfig.load(don)
    secret = settings.keystore_password.get_secret_value() if settings.keystore_password else None
    key = load_key(config.node(node).keystore, read_password(password_file, secret))
    serve(config, node, key)


@demo_app.command("settlement")
def demo_settlement(
    goal: Annotated[str, typer.Option(help="What the agent is asked to do.")] = DEFAULT_GOAL,
    approve: Annotated[
        bool,
        typer.Option(
            help="Play the approver: sign and record the approval, then settle. "
            "--no-approve leaves the run paused for `vouch runs approve|reject`."
        ),
    ] = True,
) -> None:
    """A verified settlement end to end on a local chain and DON, through a human approval."""
    outcome = run_settlement_demo(_settings(), console, goal, approve)
    if outcome is not None and outcome.status != "settled":
        raise typer.Exit(1)


@demo_app.command("cross-chain")
def demo_cross_chain(
    message: Annotated[str, typer.Option(help="What chain A sends to chain B's receiver.")] = (
        DEFAULT_MESSAGE
    ),
    amount: Annotated[
        int, typer.Option(min=1, max=100, help="Whole test tokens sent with the message.")
    ] = 2,
) -> None:
    """A message from chain A executed on a second local chain once the DON attests it; audited."""
    run_cross_chain_demo(_settings(), console, message, amount)


@app.command()
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    log: Annotated[
        Path | None, typer.Option(help="Audit this log file instead of the home's.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes recovering signatures (default: all cores).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report to this file.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every check, not only the failed ones.")
    ] = False,
) -> None:
    """Re-verify every log entry: hash chain, signatures, consensus, transactions. Exit 1 on findings."""
    raise typer.Exit(run_audit(_settings(), console, as_json, log, workers, html, verbose))


@app.command("replay")
def replay_cmd(
    execution: Annotated[str, typer.Argument(help="Execution id (or a unique prefix).")],
    log: Annotated[Path | None, typer.Option(help="Replay from this log file.")] = None,
) -> None:
    """Recompute one execution's decision from its logged inputs and show where it diverges."""
    raise typer.Exit(run_replay(_settings(), console, execution, log))


@log_app.command("export")
def log_export(
    out: Annotated[Path, typer.Argument(help="JSON Lines file to write.")],
    log: Annotated[Path | None, typer.Option(help="Export this log instead of the home's.")] = None,
) -> None:
    """Export the attestation log as JSON Lines (hashes unchanged) to hand to an auditor."""
    count = AttestationLog(log or _settings().log_path, readonly=True).export_jsonl(out)
    console.print(f"exported {count} entries to {out}")


@log_app.command("import")
def log_import(
    source: Annotated[Path, typer.Argument(help="JSON Lines export.")],
    into: Annotated[Path, typer.Option(help="New log file to create.")],
) -> None:
    """Rebuild a log file from an export (hashes kept), then audit it with `vouch audit --log`."""
    log = AttestationLog.import_jsonl(source, into)
    console.print(f"imported {sum(1 for _ in log.entries())} entries into {into}")


@log_app.command("anchor")
def log_anchor() -> None:
    """Anchor every not-yet-anchored log entry onchain (Merkle root + head hash)."""
    settings = _settings()
    stack = Stack(settings)
    chain = stack.chain_up()
    artifacts = stack.artifacts()
    deployment = stack.require_deployment(chain, artifacts)
    result = anchor_log(
        AttestationLog(settings.log_path), stack.writer(chain, artifacts), artifacts, deployment
    )
    if result is None:
        console.print("nothing to anchor: every entry is already anchored")
        return
    console.print(
        f"anchored #{result.from_seq}..#{result.to_seq} as anchor {result.index}: root {result.root} (tx {result.tx_hash})"
    )


@log_app.command("prove")
def log_prove(
    seq: Annotated[int, typer.Argument(help="The log entry's number (#N in `vouch audit`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the proof as JSON.")] = False,
) -> None:
    """Print the Merkle proof that entry SEQ is in an onchain anchor, checked locally and onchain."""
    settings = _settings()
    stack = Stack(settings)
    chain = stack.chain_up()
    artifacts = stack.artifacts()
    deployment = stack.require_deployment(chain, artifacts)
    log = AttestationLog(settings.log_path, readonly=True)
    proof = prove_entry(log, seq, stack.writer(chain, artifacts), artifacts, deployment)
    if as_json:
        console.print_json(proof.model_dump_json())
    else:
        for key, value in proof.model_dump().items():
            console.print(f"{key:17} {value}")
    if not (proof.verified_locally and proof.verified_onchain):
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop the DON and the managed chain (state is kept)."""
    stack = Stack(_settings())
    stopped = stack.don_down()
    console.print(f"nodes stopped: {', '.join(stopped) or 'none running'}")
    console.print("anvil stopped" if stack.chain_down() else "no managed anvil was running")


def main() -> None:
    """Entry point: run the CLI, turning vouch errors into a message and exit code 1."""
    try:
        code = app(standalone_mode=False)  # click returns typer.Exit codes in this mode
        sys.exit(code if isinstance(code, int) else 0)
    except (VouchError, CreError, VerifierError, AgentError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {type(exc).__name__}: {exc}")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # click usage errors (typer vendors its own click)
        import click
        from typer.exceptions import TyperException

        if isinstance(exc, click.ClickException | TyperException) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise


__all__ = ["app", "main"]
