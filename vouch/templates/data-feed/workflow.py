"""__NAME__: a data feed. Every node reads the price API; the DON reports the median.

Run it: `vouch workflow simulate workflow.py` (one process, no chain writes),
`vouch workflow run workflow.py` (the local DON's node processes, delivered to
PriceReceiver), then `vouch audit`.
"""

from __future__ import annotations

from typing import Any

from vouch.cre_adapters.workflow import Response, Runtime, Workflow, cron, median

workflow = Workflow("__SHORT__")


def parse(response: Response) -> dict[str, int]:
    """The API's price (8 decimals) as an integer: aggregation needs the same type everywhere."""
    return {"price": int(response.json()["price"])}


@workflow.handler(cron("*/30 * * * * *"))
def on_tick(rt: Runtime, event: dict[str, Any]) -> dict[str, int]:
    """Every node fetches the price; the DON reports the median to the receiver."""
    headers = (
        {"Authorization": "Bearer {{secrets.PRICE_API_KEY}}"} if rt.config.get("api_key") else {}
    )
    quote = rt.http.fetch(
        rt.config["url"],
        headers=headers,
        timeout=5,
        parse=parse,
        aggregate={"price": median(tolerance_bps=100)},  # 2f+1 nodes within 1% of the median
    )
    report = rt.report(["uint256"], [quote["price"]])
    rt.evm.write(report, receiver=rt.config["receiver"], gas_limit=400_000)
    return {"price": int(quote["price"])}
