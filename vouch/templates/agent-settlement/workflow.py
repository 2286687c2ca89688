"""__NAME__: agent settlement. An agent's trade is settled only at a price the DON attests.

The agent states its goal ("Sell 1.5 WETH for USDC between 2,500 and 3,500
within 10 minutes", `[workflow.config] goal` in vouch.toml); `propose` turns it
into a trade, the way vouch's offline settlement agent does. Every node then
reads the price API, the DON agrees on the median, and the report goes to
`SettlementReceiver` (contracts/), which settles the trade only inside the
agent's bounds, once, and before its deadline.

A callback must be deterministic given its capability results (every node runs
it and the DON compares their outputs): run a model (an LLM) before the
workflow and pass its proposal in as config or as the trigger's event, never
inside the callback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_utils import keccak

from vouch.cre_adapters.workflow import Response, Runtime, Workflow, interval, median

workflow = Workflow("__SHORT__")

UNIT = 10**18  # amounts and prices carry 18 decimals
_SELL = re.compile(r"sell\s+([\d.,]+)\s+([A-Za-z]+)\s+for\s+([A-Za-z]+)", re.I)
_BOUNDS = re.compile(r"between\s+([\d.,]+)\s+and\s+([\d.,]+)", re.I)
_WITHIN = re.compile(r"within\s+(\d+)\s+minutes?", re.I)


@dataclass(frozen=True)
class Trade:
    """What the agent proposes: sell ``amount`` of ``base`` for ``quote`` at a price in bounds."""

    base: str
    quote: str
    amount: int
    min_price: int
    max_price: int
    deadline_seconds: int


def _units(text: str) -> int:
    return int(Decimal(text.replace(",", "")) * UNIT)


def propose(goal: str) -> Trade:
    """The agent's rule: a goal such as "Sell 1.5 WETH for USDC between 2,500 and 3,500 ...".

    Raises:
        ValueError: the goal names no amount, pair or price bounds.
    """
    sell, bounds, within = _SELL.search(goal), _BOUNDS.search(goal), _WITHIN.search(goal)
    if sell is None or bounds is None:
        raise ValueError(
            f"goal {goal!r}: say 'Sell <amount> <BASE> for <QUOTE> between <a> and <b>'"
        )
    low, high = sorted((_units(bounds.group(1)), _units(bounds.group(2))))
    minutes = int(within.group(1)) if within else 10
    return Trade(
        sell.group(2).upper(), sell.group(3).upper(), _units(sell.group(1)), low, high, minutes * 60
    )


def parse(response: Response) -> dict[str, int]:
    """The API's price (18 decimals) as an integer: aggregation needs the same type everywhere."""
    return {"price": int(response.json()["price"])}


@workflow.handler(interval(60))
def on_tick(rt: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    """Attest the price; report the trade for settlement when it lies inside the agent's bounds."""
    trade = propose(rt.config["goal"])
    quote = rt.http.fetch(
        rt.config["price_url"],
        timeout=5,
        parse=parse,
        aggregate={"price": median(tolerance_bps=100)},  # 2f+1 nodes within 1% of the median
    )
    price = int(quote["price"])
    if not trade.min_price <= price <= trade.max_price:  # nothing to settle: no report, no gas
        return {"status": "outside bounds", "price": price}
    at = int(event.get("at", 0))  # the firing's time: the same on every node
    trade_id = keccak(f"{rt.config['goal']}|{at}".encode())
    report = rt.report(
        ["bytes32", "uint256", "uint256", "uint256", "uint256", "uint64"],
        [
            trade_id,
            trade.amount,
            price,
            trade.min_price,
            trade.max_price,
            at + trade.deadline_seconds,
        ],
    )
    rt.evm.write(report, receiver=rt.config["receiver"], gas_limit=400_000)
    return {"status": "settling", "trade": "0x" + trade_id.hex(), "price": price}
