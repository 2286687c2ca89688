"""Event reads that work on hosted RPCs: getLogs in block windows an endpoint accepts.

A local anvil answers one getLogs from the deployment block to the latest;
hosted RPCs refuse a request spanning more than a few hundred to a few
thousand blocks (or returning too many results). ``event_logs`` asks for the
whole range first; a refused range is halved until the endpoint answers, and
later reads through the same endpoint start with the span it accepted (the
audit's ``Web3ChainReader`` does the same for its reads).
"""

from __future__ import annotations

from typing import Any

from web3.exceptions import Web3RPCError

_SPANS: dict[str, int] = {}
"""endpoint URL -> the widest getLogs block span it answered after refusing a wider one."""


def event_logs(
    event: Any, from_block: int, argument_filters: dict[str, Any] | None = None
) -> list[Any]:
    """Every log of ``event`` (a contract event, e.g. ``gate.events.TradeCreated()``) since ``from_block``.

    Raises:
        Web3RPCError: the endpoint refuses even a one-block range (not a range limit).
    """
    w3 = event.w3
    endpoint = str(getattr(w3.provider, "endpoint_uri", ""))
    low, high = from_block, int(w3.eth.block_number)
    found: list[Any] = []
    while low <= high:
        span = _SPANS.get(endpoint)
        top = high if span is None else min(high, low + span - 1)
        try:
            found += event.get_logs(argument_filters=argument_filters, from_block=low, to_block=top)
        except Web3RPCError:
            if top == low:
                raise
            _SPANS[endpoint] = max(1, (top - low + 1) // 2)
            continue
        low = top + 1
    return found
