"""__NAME__: proof of reserve. The custodian's reserves (HTTP) against the token's supply (EVM read).

Every node reads both; the DON reports the agreed pair and the receiver
refuses it onchain when the reserves fall below the configured ratio.
"""

from __future__ import annotations

from typing import Any

from vouch.cre_adapters.workflow import Response, Runtime, Workflow, identical, interval, median

workflow = Workflow("__SHORT__")


def parse(response: Response) -> dict[str, int]:
    """The custodian's reserves, in the token's smallest unit."""
    return {"reserves": int(response.json()["reserves"])}


@workflow.handler(interval(60))
def on_tick(rt: Runtime, event: dict[str, Any]) -> dict[str, int]:
    """Read the supply at the latest block and the reserves; report both."""
    supply = rt.evm.call(
        rt.config["token"], "totalSupply()(uint256)", block="latest", aggregate=identical()
    )
    attested = rt.http.fetch(
        rt.config["reserves_url"], parse=parse, aggregate={"reserves": median(tolerance_bps=10)}
    )
    report = rt.report(["uint256", "uint256"], [attested["reserves"], supply])
    rt.evm.write(report, receiver=rt.config["receiver"], gas_limit=400_000)
    return {"reserves": attested["reserves"], "supply": supply}
