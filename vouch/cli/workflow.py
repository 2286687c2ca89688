"""`vouch workflow run|simulate`: a workflow module against the local DON or in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import SourcesOption, app, console, override, settings

workflow_app = typer.Typer(
    help="Workflows as code: Python modules (docs/workflows.md).",
    no_args_is_help=True,
)
app.add_typer(workflow_app, name="workflow")


@workflow_app.command("run")
def workflow_run(
    file: Annotated[Path, typer.Argument(help="Workflow module (.py).")],
    sources: SourcesOption = None,
    max_firings: Annotated[
        int | None,
        typer.Option(min=1, help="Stop after this many trigger firings."),
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
    """Run a workflow module against the local DON: trigger -> capabilities -> consensus -> receiver.

    FILE is a workflow module (.py, see docs/workflows.md): its handler runs on
    every node process, the report goes to its receiver, deployed from the
    project's contracts when vouch.toml names one. A spec file (TOML/JSON/YAML)
    is refused, naming the module that replaces it.

    An http trigger serves POST /trigger (loopback) on --port and runs one
    execution per request, authenticated as its http_trigger declares (bearer
    or signed) with the value of its secret.
    Exit code 1 when an execution failed or its report was refused onchain.
    """
    from .._specs import check_workflow_module

    check_workflow_module(file)
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
    from .._specs import check_workflow_module
    from .._workflow_project import simulate

    check_workflow_module(file)

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
