"""`vouch log export|import|anchor|prove`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from verifier import AttestationLog

from .._anchor import anchor_log, prove_entry
from .._stack import Stack
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
    count = AttestationLog(log or settings().log_path, readonly=True).export_jsonl(out)
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
    cfg = settings()
    stack = Stack(cfg)
    chain = stack.chain_up()
    artifacts = stack.artifacts()
    deployment = stack.require_deployment(chain, artifacts)
    result = anchor_log(
        AttestationLog(cfg.log_path), stack.writer(chain, artifacts), artifacts, deployment
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
    cfg = settings()
    stack = Stack(cfg)
    chain = stack.chain_up()
    artifacts = stack.artifacts()
    deployment = stack.require_deployment(chain, artifacts)
    log = AttestationLog(cfg.log_path, readonly=True)
    proof = prove_entry(log, seq, stack.writer(chain, artifacts), artifacts, deployment)
    if as_json:
        console.print_json(proof.model_dump_json())
    else:
        for key, value in proof.model_dump().items():
            console.print(f"{key:17} {value}")
    if not (proof.verified_locally and proof.verified_onchain):
        raise typer.Exit(1)
