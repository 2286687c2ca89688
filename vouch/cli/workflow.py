"""`vouch workflow run`: a workflow spec against the local DON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import SourcesOption, app, console, override, settings

if TYPE_CHECKING:
    from vouch.verifier import AttestationLog

    from .._anchor import AnchorPolicy

workflow_app = typer.Typer(help="Workflows from spec files (TOML/JSON/YAML).", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")


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
    sources: SourcesOption = None,
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

    from vouch.cre_adapters import FeedWorkflow, ProposalTrigger, ReportDelivery, WorkflowSpec
    from vouch.verifier import AttestationLog

    from .._anchor import AnchorPolicy
    from .._demo import run_settlement_demo
    from .._errors import VouchError
    from .._stack import Stack

    spec = WorkflowSpec.load(file)
    if log is not None and spec.target.kind == "settlement":
        raise VouchError(
            f"--log {log}: a settlement writes to HOME/attestations.db, the log `vouch audit` "
            "reads; drop --log (it is for feed rounds), or set VOUCH_HOME for another home"
        )
    if max_firings is not None and not isinstance(spec.trigger, ProposalTrigger):
        trigger = spec.trigger.model_copy(update={"runs": max_firings})
        spec = spec.model_copy(update={"trigger": trigger})
    override(don_sources=sources)
    cfg = settings()
    if spec.consensus.deadline is not None:  # the spec's deadline wins, on every path
        cfg = cfg.model_copy(update={"node_timeout": spec.consensus.deadline})
    if isinstance(spec.trigger, ProposalTrigger):  # the spec guarantees a settlement target
        outcome = run_settlement_demo(cfg, console, spec.trigger.goal)
        raise typer.Exit(0 if outcome is not None and outcome.status == "settled" else 1)
    if spec.target.kind == "settlement":  # an http trigger: one settlement per request
        from .._http_settlement import serve_settlements

        outcomes = serve_settlements(cfg, console, spec)
        raise typer.Exit(_workflow_summary(spec.name, outcomes))
    stack = Stack(cfg)
    chain = stack.chain_up()
    artifacts = stack.artifacts()
    deployment, _ = stack.deploy(chain, artifacts)
    don, _ = stack.don_up(deployment)
    onchain = spec.target.kind == "feeds"
    writer = stack.writer(chain, artifacts)
    journal = AttestationLog(log or (cfg.log_path if onchain else cfg.home / "feeds.db"))
    say = _anchoring(
        lambda kind, data: console.print(f"{kind}: {data}"),
        journal if onchain and journal.path == cfg.log_path else None,
        lambda: (writer, artifacts, deployment),
        AnchorPolicy.from_settings(cfg),
    )
    delivery = (
        ReportDelivery(deployment, artifacts, writer, journal, on_event=say) if onchain else None
    )
    runner = FeedWorkflow(
        spec,
        don,
        journal,
        rpc_url=chain.url,
        timeout=cfg.node_timeout,
        on_event=say,
        delivery=delivery,
        workflow=_feed_workflow(deployment) if onchain else None,
        token_file=cfg.home / "workflow.token",
    )
    raise typer.Exit(_workflow_summary(spec.name, asyncio.run(runner.run())))


_ROUND_ENDS = frozenset({"delivered", "refused", "skipped"})


def _anchoring(
    say: Callable[[str, dict[str, Any]], None],
    log: AttestationLog | None,
    chain: Callable[[], tuple[Any, Any, Any]],
    policy: AnchorPolicy,
) -> Callable[[str, dict[str, Any]], None]:
    """``say``, and after each round that ends, anchor the home's log when ``policy`` says so."""
    if log is None:  # a log of its own (HOME/feeds.db, --log): the home's anchor is not for it
        return say

    def on_event(kind: str, data: dict[str, Any]) -> None:
        say(kind, data)
        if kind in _ROUND_ENDS:
            anchored = policy.maybe_anchor(log, *chain())
            if anchored is not None:
                say("anchored", anchored.model_dump())

    return on_event


def _feed_workflow(deployment: Any) -> Any:
    from .._errors import VouchError

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
