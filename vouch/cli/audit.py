"""`vouch audit` and `vouch replay`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from .._errors import VouchError
from ._common import app, console, settings

if TYPE_CHECKING:
    from .._settings import VouchSettings


@app.command()
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    log: Annotated[
        str | None,
        typer.Option(help="Audit this log (a file or a postgresql:// URL) instead of the home's."),
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
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="Pin the deployment from this manifest (default: HOME/deployments/<chain id>.json)."
        ),
    ] = None,
    chain_id: Annotated[int | None, typer.Option(help="The pinned chain id.")] = None,
    forwarder: Annotated[str | None, typer.Option(help="The pinned Forwarder address.")] = None,
    gate: Annotated[str | None, typer.Option(help="The pinned SettlementGate address.")] = None,
    anchor: Annotated[
        str | None, typer.Option(help="The pinned AttestationAnchor address.")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option(help="The pinned CrossChainGateway address.")
    ] = None,
    trust_log_addresses: Annotated[
        bool,
        typer.Option(
            "--trust-log-addresses",
            help="With nothing pinned, take the addresses the log names (marked in the output).",
        ),
    ] = False,
) -> None:
    """Re-verify every log entry against the pinned deployment. Exit 0 ok, 1 findings, 2 cannot audit."""
    from .._auditing import run_audit

    pins = {
        "manifest": manifest,
        "chain_id": chain_id,
        "forwarder": forwarder,
        "gate": gate,
        "anchor": anchor,
        "gateway": gateway,
        "trust_log_addresses": trust_log_addresses,
    }
    raise typer.Exit(
        run_audit(_settings(as_json), console, as_json, log, workers, html, verbose, pins)
    )


def _settings(as_json: bool) -> VouchSettings:
    """The settings; settings that do not load mean the audit cannot run (exit 2, JSON if asked)."""
    from .._auditing import EXIT_CANNOT_AUDIT

    try:
        return settings()
    except VouchError as exc:
        if as_json:  # standard output stays JSON for a machine, whatever went wrong
            console.file.write(json.dumps({"ok": False, "cannot_audit": str(exc)}) + "\n")
        else:
            console.print(Text.assemble(("cannot audit: ", "red"), str(exc)))
        raise typer.Exit(EXIT_CANNOT_AUDIT) from None


@app.command("replay")
def replay_cmd(
    execution: Annotated[str, typer.Argument(help="Execution id (or a unique prefix).")],
    log: Annotated[
        str | None, typer.Option(help="Replay from this log (a file or a postgresql:// URL).")
    ] = None,
) -> None:
    """Recompute one execution's decision from its logged inputs and show where it diverges.

    Exit 0 it matches, 1 it diverges, 2 cannot replay.
    """
    from .._auditing import run_replay

    raise typer.Exit(run_replay(settings(), console, execution, log))
