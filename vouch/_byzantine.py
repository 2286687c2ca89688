"""`vouch demo byzantine`: a DON of 7 (f=2) settles despite f faulty nodes; f+1 are refused.

Act 1: node-7 lies (+50%), node-6 equivocates (different askers, different
answers), node-5 is slow. The coordinator collects 2f+1 = 5 observations in
band, leaves the liar and the equivocator out with their signed answers kept as
evidence in the observations entry, and the trade settles at the honest median.

Act 2: node-4 lies too: f+1 = 3 byzantine nodes. Only 4 honest answers are in
band, fewer than 2f+1: the DON refuses to attest (``QuorumNotReached``, logged
as ``aborted`` with each node's cause), nothing is submitted, the run fails, and
once the trade's deadline (1 minute) passes the demo refunds both legs and logs
the ``refund`` entry. The faults the demo set are cleared at the end.

The demo runs on the home's DON when it has 7 nodes and f=2; otherwise it says
it deploys for that DON (the CLI passes ``--nodes 7 --f 2``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from rich.console import Console

from vouch.cre_adapters import DonConfig, FaultSpec, SettlementOutcome
from vouch.cre_adapters._processes import set_fault
from vouch.verifier import open_log

from ._demo import _bring_up, _price, _refund, run_settlement_demo
from ._errors import VouchError
from ._settings import VouchSettings
from ._stack import Stack

BYZANTINE_GOAL = "Sell 1.5 WETH for USDC between 2,500 and 3,500 USDC per WETH within 1 minutes"
ACT_ONE = {
    "node-7": FaultSpec(mode="lie", lie_bps=5000),
    "node-6": FaultSpec(mode="equivocate"),
    "node-5": FaultSpec(mode="slow", delay=1.0),
}
ACT_TWO = {**ACT_ONE, "node-4": FaultSpec(mode="lie", lie_bps=5000)}


class ByzantineResult(BaseModel):
    """Act 1's settlement, Act 2's refund entry payload."""

    settled: SettlementOutcome
    refund: dict[str, Any]


def run_byzantine_demo(settings: VouchSettings, console: Console) -> ByzantineResult:
    """Both acts; see the module docstring.

    Raises:
        VouchError: the settings are not a DON of 7 with f=2, or an act ended otherwise.
    """
    if settings.nodes != 7 or settings.f != 2:
        raise VouchError(
            f"the byzantine demo needs a DON of 7 nodes with f=2, not {settings.nodes} with "
            f"f={settings.f}: run it as `vouch demo byzantine` (it passes --nodes 7 --f 2)"
        )
    submitter = _bring_up(settings, console)
    don = DonConfig.load(Stack(settings).don_file)
    try:
        settled = _act_one(settings, console, submitter, don)
        refund = _act_two(settings, console, submitter, don)
    finally:
        for name in ACT_TWO:
            set_fault(don, name, FaultSpec())
    console.print("faults cleared; audit it: [bold]vouch audit[/]")
    return ByzantineResult(settled=settled, refund=refund)


def _faults(console: Console, don: DonConfig, faults: dict[str, FaultSpec]) -> None:
    for name, fault in faults.items():
        set_fault(don, name, fault)
        console.print(f"  [yellow]![/] {name}: {fault.mode}")


def _act_one(
    settings: VouchSettings, console: Console, submitter: Any, don: DonConfig
) -> SettlementOutcome:
    console.rule("[bold]act 1: f = 2 faulty nodes out of 7")
    _faults(console, don, ACT_ONE)
    outcome = run_settlement_demo(settings, console, BYZANTINE_GOAL, True, submitter)
    if outcome is None or outcome.status != "settled":
        raise VouchError(f"act 1 should settle; it ended {outcome.status if outcome else None}")
    _evidence(console, settings, outcome.execution_id)
    console.print(f"  [green]✓[/] settled at the honest median {_price(outcome.price)}")
    return outcome


def _act_two(
    settings: VouchSettings, console: Console, submitter: Any, don: DonConfig
) -> dict[str, Any]:
    console.rule("[bold]act 2: f + 1 = 3 byzantine nodes")
    _faults(console, don, ACT_TWO)
    try:
        run_settlement_demo(settings, console, BYZANTINE_GOAL, True, submitter)
    except VouchError as exc:
        console.print(f"  [red]●[/] refused: {exc}")
    else:
        raise VouchError("act 2 should be refused by the DON; it settled")
    log = open_log(settings.log_location)
    last = [e for e in log.entries() if e.kind == "proposal"][-1]
    aborted = [e for e in log.by_execution(last.execution_id) if e.kind == "aborted"]
    for cause in aborted[-1].payload.get("causes", []) if aborted else []:
        console.print(f"    {cause}")
    return _refund(settings, console, int(last.payload["trade_id"]))


def _evidence(console: Console, settings: VouchSettings, execution: str) -> None:
    """Print who was left out of the round and the signed evidence kept against them."""
    entries = open_log(settings.log_location).by_execution(execution)
    observed = [e for e in entries if e.kind == "observations"][-1].payload
    for item in observed.get("evidence", []):
        console.print(f"  evidence: {item['node']} {item['cause']} (signed answers logged)")
    for item in observed.get("absent", []):
        console.print(f"  left out: {item['node']}: {item['cause']} {item.get('detail', '')}")
