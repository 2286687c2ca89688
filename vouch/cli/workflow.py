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

workflow_app = typer.Typer(
    help="Workflows: Python modules (workflows as code) or spec files (TOML/JSON/YAML).",
    no_args_is_help=True,
)
app.add_typer(workflow_app, name="workflow")


@workflow_app.command("run")
def workflow_run(
    file: Annotated[
        Path, typer.Argument(help="Workflow module (.py) or spec (.toml, .json, .yaml).")
    ],
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
    port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help="A module's http trigger: the loopback port of POST /trigger (0: a free one).",
        ),
    ] = 8790,
) -> None:
    """Run a workflow against the local DON: trigger -> capabilities -> consensus -> target.

    FILE is a workflow module (.py, see docs/workflows.md: its handler runs on
    every node process, the report goes to its receiver, deployed from the
    project's contracts when vouch.toml names one) or a spec file.

    An http trigger serves POST /trigger (loopback) and runs one execution per
    request: a spec's with the bearer token from its token_file (default
    HOME/workflow.token); a module's on --port, authenticated as its
    http_trigger declares (bearer or signed) with the value of its secret.
    Exit code 1 when an execution failed or its report was refused onchain.
    """
    import asyncio

    from vouch.cre_adapters import FeedWorkflow, ProposalTrigger, ReportDelivery, WorkflowSpec
    from vouch.verifier import AttestationLog

    from .._anchor import AnchorPolicy
    from .._demo import run_settlement_demo
    from .._errors import VouchError
    from .._stack import Stack

    if file.suffix == ".py":
        if log is not None:
            raise VouchError("--log: a workflow module writes to the log `vouch audit` reads")
        override(don_sources=sources)
        from .._workflow_project import run_project

        results = run_project(settings(), file, console, max_firings=max_firings, port=port)
        bad = [r for r in results if r.status not in ("delivered", "finished", "reported")]
        console.print(
            f"workflow {file.name}: {len(results)} execution(s)"
            + (f", {len(bad)} refused" if bad else "")
            + ("" if results else ", none completed")
        )
        raise typer.Exit(1 if bad or not results else 0)
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


@workflow_app.command("simulate")
def workflow_simulate(
    file: Annotated[Path, typer.Argument(help="Workflow module (.py).")],
    broadcast: Annotated[
        bool,
        typer.Option(
            "--broadcast",
            help="Write to the local chain through the real forwarder, signed by the DON's own "
            "node keys (their secret stores), and log to the home's log.",
        ),
    ] = False,
    limits: Annotated[
        bool,
        typer.Option("--limits", help="Enforce CRE's production quotas (docs/workflows.md)."),
    ] = False,
    handler: Annotated[
        str | None, typer.Option(help="The handler to run (default: the only one).")
    ] = None,
    event: Annotated[
        str | None, typer.Option(help="The trigger event as JSON (an http or evm-log payload).")
    ] = None,
) -> None:
    """Run one execution of a workflow module in this process: every node in-process, no chain writes.

    Secrets come from VOUCH_SECRET_<NAME> variables (with --broadcast: the nodes'
    stores, `vouch secrets set`). Exit 1 when the execution fails or its report is refused.
    """
    import json

    from .._errors import VouchError
    from .._workflow_project import simulate

    try:
        payload = json.loads(event) if event else {}
    except ValueError as exc:
        raise VouchError(f"--event is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise VouchError("--event must be a JSON object")
    result = simulate(
        settings(),
        file,
        console,
        broadcast=broadcast,
        limits="cre" if limits else "default",
        handler=handler,
        event=payload,
    )
    console.print(
        f"result: {json.dumps(result.outcome, default=str)}", markup=False, highlight=False
    )
    if result.report is not None:
        console.print(
            f"report: {result.report['abi_types']} = {result.report['values']}, signed by "
            f"{len(result.report['signers'])} nodes, for {result.report['receiver']}",
            markup=False,
        )
    if result.submission is not None:
        console.print(
            f"submission: {result.submission['status']} in {result.submission['tx_hash']}"
        )
    raise typer.Exit(1 if result.status == "refused" else 0)


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
