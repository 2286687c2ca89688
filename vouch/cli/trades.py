"""`vouch trades list|show|refund`: escrows as the SettlementGate holds them; refunds.

``list`` and ``show`` only read: with the chain down they start nothing and
exit 2 saying how to start it. ``refund`` acts as the trade's parties (derived
from the escrow step's idempotency key, found in the runs database) and logs
one ``refund`` entry; a trade already refunded is said so, nothing is sent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import app, console, settings

if TYPE_CHECKING:
    from .._recovery import ChainParts
    from .._refunds import EscrowBook, TradeView

trades_app = typer.Typer(help="Escrowed trades on the SettlementGate.", no_args_is_help=True)
app.add_typer(trades_app, name="trades")
ONE = 10**18


def _parts(start: bool = False) -> ChainParts:
    """Without ``start``: the running chain only (ChainNotRunning, exit 2, if it is down)."""
    from .._recovery import chain_parts

    return chain_parts(settings(), start=start)


def _book(parts: ChainParts) -> EscrowBook:
    from .._refunds import EscrowBook

    return EscrowBook(parts.writer.w3, parts.artifacts, parts.deployment)


def _when(trade: TradeView, now: int) -> str:
    if not trade.escrowed:
        return "-"
    if now > trade.deadline:
        return "refundable now"
    return f"settles or is refundable after {trade.deadline - now + 1}s"


@trades_app.command("list")
def list_trades() -> None:
    """Every trade on the gate, read from the chain: status, amounts, deadline."""
    book = _book(_parts())
    now = book.now()
    table = Table("trade", "status", "base (WETH)", "max quote (USDC)", "price bounds", "deadline")
    for trade in book.trades():
        table.add_row(
            f"#{trade.trade_id}",
            trade.status,
            f"{trade.base_amount / ONE:,.4f}",
            f"{trade.max_quote / ONE:,.2f}",
            f"{trade.min_price / ONE:,.2f}..{trade.max_price / ONE:,.2f}",
            _when(trade, now),
        )
    console.print(table)


@trades_app.command("show")
def show_trade(
    trade_id: Annotated[int, typer.Argument(help="The trade's id (#N in `vouch trades list`).")],
    log: Annotated[Path | None, typer.Option(help="The attestation log (default: home's).")] = None,
) -> None:
    """One trade from the chain, and its execution's entries in the log."""
    from vouch.verifier import AttestationLog

    from .._refunds import execution_of

    parts = _parts()
    book = _book(parts)
    trade, now = book.trade(trade_id), book.now()
    for name, value in trade.model_dump().items():
        console.print(f"  {name:<15} {value}")
    console.print(f"  {'deadline':<15} {_when(trade, now)} (chain time {now})")
    path = log or settings().log_path
    if not path.exists():
        return
    attestations = AttestationLog(path, readonly=True)
    execution = execution_of(attestations, trade_id, book.gate.address)
    if execution is None:
        console.print(f"  log: no proposal of this trade in {path}")
        return
    kinds = [f"#{e.seq} {e.kind}" for e in attestations.by_execution(execution)]
    console.print(f"  execution       {execution}\n  log entries     {', '.join(kinds)}")


@trades_app.command("refund")
def refund_trade(
    trade_id: Annotated[int, typer.Argument(help="The trade's id (#N in `vouch trades list`).")],
    wait: Annotated[
        bool, typer.Option(help="Wait for the trade's deadline instead of failing before it.")
    ] = False,
    db: Annotated[
        Path | None, typer.Option(help="Runs database that escrowed it (default: home's).")
    ] = None,
) -> None:
    """Refund a trade that can no longer settle (after its deadline), as its parties; log it."""
    from vouch.agents import open_checkpoints
    from vouch.verifier import open_log

    from .._recovery import close_refunded, find_escrow, refunder

    parts = _parts(start=True)
    gate = parts.deployment.address("SettlementGate")
    store = open_checkpoints(str(db) if db else settings().runs_location)
    found = find_escrow(store, trade_id, gate)
    if found is None:
        Console(stderr=True).print(
            f"error: no run in the runs database escrowed trade #{trade_id} on gate {gate}; "
            "vouch can only refund trades whose parties it derived (pass --db for another one)"
        )
        raise typer.Exit(2)
    run, key = found
    started = time.monotonic()
    entry, new = refunder(parts, open_log(settings().log_location)).refund(trade_id, key, wait)
    p = entry.payload
    close_refunded(store, run, p)
    if not new:
        console.print(
            f"trade #{trade_id} was already refunded (log entry #{entry.seq}, tx {p['tx_hash']}): "
            "nothing new sent or logged"
        )
        return
    console.print(
        f"refunded trade #{trade_id} of run {run.run_id} in tx {p['tx_hash']} (block "
        f"{p['block_number']}, {time.monotonic() - started:.1f}s): {p['base_amount'] / ONE:,.4f} "
        f"WETH back to the seller, {p['quote_amount'] / ONE:,.2f} USDC back to the buyer; "
        f"why: {p['reason']}; logged as entry #{entry.seq}"
    )
