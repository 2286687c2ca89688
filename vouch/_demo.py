"""`vouch demo settlement|refusal`: a verified settlement end to end, or one refused and refunded."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from vouch.agents import (
    ChatModel,
    Endpoint,
    OpenAIChatModel,
    PlanError,
    RunOutcome,
    open_checkpoints,
)
from vouch.cre_adapters import SettlementOutcome, SettlementWorkflow
from vouch.verifier import open_log

from ._anchor import AnchorPolicy
from ._errors import VouchError
from ._flow import (
    Services,
    offline_model,
    settlement_executor,
    sign_decision,
)
from ._recovery import (
    chain_parts,
    close_refunded,
    find_escrow,
    interrupted_says,
    refunder,
    stopped_hint,
)
from ._settings import VouchSettings
from ._settlement import ChainSubmitter
from ._stack import Stack

DEFAULT_GOAL = "Sell 1.5 WETH for USDC between 2,500 and 3,500 USDC per WETH within 10 minutes"
ONE = 10**18


def _price(value: int) -> str:
    return f"{value / ONE:,.2f}"


class _Printer:
    """Turns workflow events into lines on the console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        say = self.console.print
        if kind == "trade":
            say(
                f"  [green]✓[/] trade #{data['trade_id']} escrowed: seller {data['seller'][:10]}…, buyer {data['buyer'][:10]}…"
            )
        elif kind == "observing":
            say(f"  … asking {data['nodes']} nodes for signed {data['feed']} observations")
        elif kind == "consensus":
            say(
                f"  [green]✓[/] consensus: median of {data['observations']} signed observations = {_price(data['price'])}"
            )
        elif kind == "signed":
            say(
                f"  [green]✓[/] report signed by {len(data['signers'])} nodes (f+1), each re-derived the median"
            )
        elif kind == "submitting":
            say(f"  … submitting through Forwarder {data['forwarder']}")
        elif kind == "anchored":
            say(
                f"  [green]✓[/] log entries #{data['from_seq']}..#{data['to_seq']} anchored onchain (root {data['root'][:18]}…)"
            )
        elif kind == "anchor-skipped":
            say(f"  [yellow]![/] not anchored: {data['reason']}")
        elif kind in ("settled", "refused"):
            style = "green" if kind == "settled" else "red"
            say(
                f"  [{style}]●[/] {kind} in block {data['block_number']} (tx {data['tx_hash'][:18]}…)"
            )


def chat_model(settings: VouchSettings) -> ChatModel:
    """The model of the large tier (planning), or the deterministic offline one."""
    endpoint: Endpoint | None = settings.endpoint("large")
    return offline_model() if endpoint is None else OpenAIChatModel(endpoint)


def run_settlement_demo(
    settings: VouchSettings,
    console: Console,
    goal: str = DEFAULT_GOAL,
    approve: bool = True,
    submitter: ChainSubmitter | None = None,
) -> SettlementOutcome | None:
    """Bring up chain, contracts and DON as needed; run the settlement flow; summarize.

    The run pauses before the irreversible settlement, like any run would. With
    ``approve`` the demo plays the person at the desk: it signs the approval with
    the approver key (recorded onchain when the trade is above the threshold),
    logs it and resumes. Without, it prints how to decide and returns None.

    Raises:
        agents.PlanError: if the model made no valid plan for the goal.
        VouchError: if the agent made no proposal or the run failed.
        cre_adapters.QuorumNotReached: if too few nodes answered; nothing was submitted.

    Args:
        settings: the home.
        console: where to print.
        goal: what the agent is asked.
        approve: play the approver.
        submitter: an already brought up stack (a demo running several settlements).
    """
    submitter = submitter or _bring_up(settings, console)
    services = Services(settings, submitter=submitter)
    model = chat_model(settings)
    store = open_checkpoints(settings.runs_location)
    executor = settlement_executor(services, model, store)
    console.print(f"\n[bold]agent[/] ({model.name}): “{goal}”")
    run_id = uuid.uuid4().hex[:12]
    with interrupted_says(lambda: stopped_hint(store, run_id)):
        outcome = asyncio.run(executor.run(goal, run_id=run_id))
    if isinstance(outcome.error, PlanError):
        raise outcome.error
    if outcome.status == "interrupted":
        _paused(console, outcome.run_id, outcome.outputs.get("escrow", {}), settings)
        if not approve:
            return None
        for action in outcome.pending:
            signed = sign_decision(services, outcome.run_id, action, True, "approved by the demo")
            executor.decide(outcome.run_id, action.key, True, "demo", by=signed["approver"])
            _approved(console, signed)
        with interrupted_says(lambda: stopped_hint(store, run_id)):
            outcome = asyncio.run(executor.resume(outcome.run_id))
    if outcome.status != "done" or submitter.last_outcome is None:
        raise VouchError(f"run {outcome.run_id} ended {outcome.status}: {outcome.reason}")
    _summary(console, submitter.last_outcome, submitter.last_trade_id, settings, outcome)
    return submitter.last_outcome


def _bring_up(settings: VouchSettings, console: Console) -> ChainSubmitter:
    """Chain, contracts (with the approval policy) and DON, each reused when already up."""
    stack = Stack(settings)
    say = console.print
    console.rule("[bold]vouch demo: a verified settlement")
    with console.status("starting the chain…"):
        chain = stack.chain_up()
    say(
        f"[green]✓[/] chain {chain.chain_id} at {chain.url}"
        + (" (managed anvil)" if chain.managed else "")
    )
    with console.status("compiling contracts (solcjs; cached by source hash)…"):
        artifacts = stack.artifacts()
    say(f"[green]✓[/] {len(artifacts.contracts)} contracts compiled ({artifacts.source_hash[:12]})")
    with console.status("deploying Forwarder, SettlementGate and test tokens…"):
        deployment, fresh = stack.deploy(chain, artifacts)
    say(
        f"[green]✓[/] contracts {'deployed' if fresh else 'already deployed'}: "
        f"Forwarder {deployment.address('Forwarder')}, SettlementGate {deployment.address('SettlementGate')}"
    )
    with console.status(f"starting {settings.nodes} oracle nodes…"):
        don, started = stack.don_up(deployment)
    say(
        f"[green]✓[/] DON of {len(don.nodes)} nodes (f={don.f}) {'started' if started else 'running'}: "
        + ", ".join(n.url.rsplit(":", 1)[1] for n in don.nodes)
    )
    printer = _Printer(console)
    log = open_log(settings.log_location)
    writer = stack.writer(chain, artifacts)
    workflow = SettlementWorkflow(
        don, deployment, artifacts, writer, log, timeout=settings.node_timeout, on_event=printer
    )
    return ChainSubmitter(
        workflow,
        writer,
        artifacts,
        deployment,
        log,
        printer,
        AnchorPolicy.from_settings(settings),
        party_secret=stack.party_secret(chain),
    )


def _paused(console: Console, run_id: str, escrow: dict[str, Any], settings: VouchSettings) -> None:
    trade = escrow.get("job", {}).get("trade_id", "?")
    onchain = escrow.get("needs_approval")
    console.print(
        f"  [yellow]⏸[/] run {run_id} paused before the irreversible settlement of trade #{trade}"
        + (
            f" (above the {_price(settings.approval_threshold)} WETH threshold: the gate needs an "
            "approver's signature)"
            if onchain
            else ""
        )
    )
    vouch = _command_name()
    console.print(
        f"    decide: [bold]{vouch} runs approve {run_id}[/]  or  "
        f"[bold]{vouch} runs reject {run_id} --reason …[/]"
    )


def _approved(console: Console, signed: dict[str, Any]) -> None:
    where = f"recorded onchain (tx {signed['tx_hash'][:18]}…)" if signed["tx_hash"] else "logged"
    console.print(
        f"  [green]✓[/] approved by approver {signed['approver'][:10]}… (EIP-712 signature, {where}); resuming"
    )


def _summary(
    console: Console,
    outcome: SettlementOutcome,
    trade_id: int | None,
    settings: VouchSettings,
    run: RunOutcome,
) -> None:
    table = Table(title="settlement", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row(
        "status", f"[{'green' if outcome.status == 'settled' else 'red'}]{outcome.status}[/]"
    )
    table.add_row("trade id", str(trade_id))
    table.add_row("attested price", f"{_price(outcome.price)} USDC per WETH")
    table.add_row("signers", "\n".join(outcome.signers))
    table.add_row("tx hash", outcome.tx_hash)
    table.add_row("block", str(outcome.block_number))
    table.add_row("gas used", f"{outcome.gas_used:,}")
    table.add_row("execution id", outcome.execution_id)
    table.add_row("log entry", f"#{outcome.log_seq} in {settings.log_path}")
    table.add_row("agent run", f"{run.run_id} (trace hash {run.trace_hash[:18]}…)")
    if outcome.error:
        table.add_row("refused with", f"{outcome.error['name']}({outcome.error['args']})")
    console.print(table)
    vouch = _command_name()
    console.print(f"audit it: [bold]{vouch} audit[/]   ·   stop everything: [bold]{vouch} down[/]")


def _command_name() -> str:
    """How the user can call vouch from here: plain `vouch` if on PATH, else the venv's."""
    found = shutil.which("vouch")
    if found and Path(found).resolve() == Path(sys.argv[0]).resolve():
        return "vouch"
    return os.path.relpath(sys.argv[0]) if sys.argv[0].endswith("vouch") else "vouch"


REFUSAL_GOAL = "Sell 1.5 WETH for USDC between 3,300 and 3,750 USDC per WETH within 1 minutes"
"""A sell order 10% above anything the demo market reaches (it wanders +-4% around 3,000)."""


def run_refusal_demo(settings: VouchSettings, console: Console) -> RefusalResult:
    """A trade the gate refuses onchain (attested price outside its bounds), then refunded.

    The agent proposes selling at 3,300..3,750 USDC per WETH; the DON attests
    the market's price (about 3,000), the forwarder verifies the report and the
    gate refuses it with ``PriceOutOfBounds``; the refusal is final for this
    trade, so once its deadline (1 minute) passes the demo refunds both legs
    with the parties' keys and logs a ``refund`` entry; ``vouch audit`` then
    checks the refused submission and the refund against the chain.

    Raises:
        VouchError: the trade settled (the market reached the bounds) or the run failed.
    """
    outcome = run_settlement_demo(settings, console, REFUSAL_GOAL, approve=True)
    if outcome is None or outcome.status == "settled":
        raise VouchError("the trade settled: the market reached the order's bounds; run it again")
    trade_id = _trade_of(settings, outcome.execution_id)
    console.rule("[bold]the refusal is final: refund the escrow")
    return RefusalResult(outcome=outcome, refund=_refund(settings, console, trade_id))


class RefusalResult(BaseModel):
    """The refused settlement and the refund entry's payload."""

    outcome: SettlementOutcome
    refund: dict[str, Any]


def _trade_of(settings: VouchSettings, execution: str) -> int:
    entries = open_log(settings.log_location).by_execution(execution)
    proposal = next(e for e in entries if e.kind == "proposal")
    return int(proposal.payload["trade_id"])


def _refund(settings: VouchSettings, console: Console, trade_id: int) -> dict[str, Any]:
    """Refund ``trade_id`` as its parties once its deadline passed; say what moved."""
    parts = chain_parts(settings, start=True)
    gate = parts.deployment.address("SettlementGate")
    found = find_escrow(open_checkpoints(settings.runs_location), trade_id, gate)
    if found is None:
        raise VouchError(f"no run of this home escrowed trade #{trade_id}")
    refunds = refunder(parts, open_log(settings.log_location))
    trade = refunds.book.trade(trade_id)
    wait = max(0, trade.deadline - refunds.book.now() + 1)
    with console.status(
        f"waiting {wait}s for trade #{trade_id}'s deadline (refunds open after it)…"
    ):
        entry, _ = refunds.refund(trade_id, found[1], wait=True)
    close_refunded(open_checkpoints(settings.runs_location), found[0], entry.payload)
    p = entry.payload
    console.print(
        f"  [green]✓[/] trade #{trade_id} refunded in tx {p['tx_hash'][:18]}…: "
        f"{_price(p['base_amount'])} WETH back to the seller, {_price(p['quote_amount'])} USDC "
        f"back to the buyer\n  why: {p['reason']}\n  logged as entry #{entry.seq}"
    )
    console.print(f"audit it: [bold]{_command_name()} audit[/]")
    return dict(p)
