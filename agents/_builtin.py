"""Built-in tools: HTTP fetch and EVM read.

The onchain proposal tool comes with ``settlement_agent``; memory tools with ``memory_tools``.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from ._errors import ToolError
from ._loop import Tool


class FetchArgs(BaseModel):
    """Arguments of ``http_fetch``."""

    url: str = Field(description="an http(s) URL on an allowed host")


def http_fetch_tool(
    allowed_hosts: set[str], timeout_seconds: float = 10.0, max_bytes: int = 100_000
) -> Tool:
    """A GET-only fetch tool limited to ``allowed_hosts``; answers status, type and (cut) text.

    A refused host or a failed request raises, which the agent loop hands back
    to the model as an observation.
    """

    async def fetch(args: FetchArgs) -> dict[str, Any]:
        url = httpx.URL(args.url)
        if url.scheme not in ("http", "https") or url.host not in allowed_hosts:
            raise ToolError(f"host {url.host!r} is not allowed; allowed: {sorted(allowed_hosts)}")
        async with httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False) as client:
            response = await client.get(url)
        body = response.content[:max_bytes].decode(response.encoding or "utf-8", "replace")
        return {
            "status": response.status_code,
            "content_type": response.headers.get("content-type", ""),
            "text": body,
            "truncated": len(response.content) > max_bytes,
        }

    return Tool(
        name="http_fetch",
        description=f"GET a URL on one of these hosts: {', '.join(sorted(allowed_hosts))}.",
        args_model=FetchArgs,
        fn=fetch,
    )


class EvmReadArgs(BaseModel):
    """Arguments of ``evm_read``: one read-only JSON-RPC call."""

    method: Literal["eth_chainId", "eth_blockNumber", "eth_getBalance", "eth_call", "eth_getCode"]
    address: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")
    data: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]*$", description="calldata")
    block: str = "latest"


def _params(args: EvmReadArgs) -> list[Any]:
    if args.method in ("eth_chainId", "eth_blockNumber"):
        return []
    if args.address is None:
        raise ToolError(f"{args.method} needs an address")
    if args.method == "eth_call":
        return [{"to": args.address, "data": args.data or "0x"}, args.block]
    return [args.address, args.block]


def evm_read_tool(rpc_url: str, timeout_seconds: float = 10.0) -> Tool:
    """A read-only EVM tool over JSON-RPC: chain id, block number, balance, code, eth_call.

    Only read methods are allowed, so it can never move funds; writes go through
    the onchain proposal tool and the DON.
    """

    async def read(args: EvmReadArgs) -> dict[str, Any]:
        payload = {"jsonrpc": "2.0", "id": 1, "method": args.method, "params": _params(args)}
        async with httpx.AsyncClient(timeout=timeout_seconds) as client:
            answer = (await client.post(rpc_url, json=payload)).json()
        if "error" in answer:
            raise ToolError(f"{args.method} failed: {answer['error']}")
        result = answer.get("result")
        decoded = (
            int(result, 16) if args.method != "eth_call" and args.method != "eth_getCode" else None
        )
        return {"method": args.method, "result": result, "int": decoded}

    return Tool(
        name="evm_read",
        description="Read from the chain (no writes): chain id, block number, balance, code, eth_call.",
        args_model=EvmReadArgs,
        fn=read,
    )
