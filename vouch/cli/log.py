"""`vouch log export|import|anchor|prove`.

None of them starts a chain: `anchor` and `prove` need the running chain and
exit 2 naming `vouch chain up` when it is down (docs/log.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ._common import app, console, settings

log_app = typer.Typer(
    help="The attestation log: export, import, anchor, prove.", no_args_is_help=True
)
app.add_typer(log_app, name="log")


@log_app.command("export")
def log_export(
    out: Annotated[Path, typer.Argument(help="JSON Lines file to write.")],
    log: Annotated[Path | None, typer.Option(help="Export this log instead of the home's.")] = None,
) -> None:
    """Export the attestation log as JSON Lines (hashes unchanged) to hand to an auditor."""
    from vouch.verifier import open_log

    count = open_log(log or settings().log_location, readonly=True).export_jsonl(out)
    console.print(f"exported {count} entries to {out}")


@log_app.command("import")
def log_import(
    source: Annotated[Path, typer.Argument(help="JSON Lines export.")],
    into: Annotated[Path, typer.Option(help="New log file to create.")],
) -> None:
    """Rebuild a log file from an export (hashes kept), then audit it with `vouch audit --log`.

    The whole export is verified first; a bad line is named and nothing is written.
    """
    from vouch.verifier import AttestationLog

    log = AttestationLog.import_jsonl(source, into)
    console.print(f"imported {log.last_seq()} entries into {into} (hash chain verified)")


@log_app.command("anchor")
def log_anchor() -> None:
    """Anchor every not-yet-anchored log entry onchain (Merkle root + head hash).

    Needs the running chain (never starts one: `vouch chain up` first).
    """
    from vouch.verifier import open_log

    from .._anchor import anchor_everything
    from .._stack import Stack

    cfg = settings()
    stack = Stack(cfg)
    chain = stack.require_chain()
    artifacts = stack.artifacts()
    deployment = stack.require_deployment(chain, artifacts)
    result = anchor_everything(
        open_log(cfg.log_location), stack.writer(chain, artifacts), artifacts, deployment
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
    log: Annotated[
        Path | None, typer.Option(help="Prove an entry of this log file instead of the home's.")
    ] = None,
) -> None:
    """Print the Merkle proof that entry SEQ is in an onchain anchor, checked locally and onchain.

    The entry's hash is recomputed from its content: an edited entry never
    verifies (exit 1). Reads only; exit 2 if the chain is not running.
    """
    from vouch.verifier import open_log

    from .._anchor import live_manifest, prove_entry
    from .._errors import MissingEnvironment
    from .._stack import Stack

    cfg = settings()
    stack = Stack(cfg)
    chain = stack.require_chain()
    deployment = live_manifest(cfg, chain)
    if deployment is None:
        raise MissingEnvironment(
            f"no vouch deployment on chain {chain.chain_id} "
            f"({cfg.deployment_path(chain.chain_id)} is missing or its contracts have no code)"
        )
    entries = open_log(log or cfg.log_location, readonly=True)
    artifacts = stack.artifacts()
    proof = prove_entry(entries, seq, chain.web3(), artifacts, deployment)
    if as_json:
        console.print_json(proof.model_dump_json())
    else:
        for key, value in proof.model_dump().items():
            console.print(f"{key:20} {value}")
    if not proof.content_matches_hash:
        Console(stderr=True).print(
            f"[red]entry #{seq} was edited:[/] its content hashes to {proof.entry_hash}, "
            f"the log says {proof.stored_hash}"
        )
    if not proof.verified:
        raise typer.Exit(1)
