"""Built-in tools: HTTP fetch and EVM read (balances, calls, logs).

Memory tools come with ``memory_tools``. Tools that act onchain belong to the
application that owns the chain.
"""

from __future__ import annotations

from typing import Any, Literal

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
        import httpx  # start-up (issue 19): loaded when a tool first runs

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


ReadMethod = Literal[
    "eth_chainId", "eth_blockNumber", "eth_getBalance", "eth_call", "eth_getCode", "eth_getLogs"
]


class EvmReadArgs(BaseModel):
    """Arguments of ``evm_read``: one read-only JSON-RPC call.

    For ``eth_call`` give raw ``data``, or ``function`` (a signature such as
    ``balanceOf(address)``) with ``args`` to have the calldata encoded, and
    ``returns`` (ABI types) to have the answer decoded into ``values``. ``eth_getLogs`` reads
    the logs of ``address`` (any, when unset) matching ``topics`` in
    ``from_block``..``block``.
    """

    method: ReadMethod
    address: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")
    data: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]*$", description="calldata")
    function: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_]\w*\([\w,\[\] ]*\)$",
        description="e.g. balanceOf(address)",
    )
    args: list[Any] = Field(default_factory=list, description="the function's arguments")
    returns: list[str] = Field(default_factory=list, description="ABI types, e.g. ['uint256']")
    topics: list[str | list[str] | None] = Field(default_factory=list, description="log topics")
    from_block: str = Field(default="0x0", description="first block of eth_getLogs")
    block: str = "latest"


def _calldata(args: EvmReadArgs) -> str:
    if args.function is None:
        return args.data or "0x"
    from eth_abi import encode
    from eth_utils import keccak

    signature = args.function.replace(" ", "")
    types = [t for t in signature[signature.index("(") + 1 : -1].split(",") if t]
    try:
        encoded = encode(types, args.args)
    except Exception as exc:  # eth_abi raises several types for a bad value
        raise ToolError(f"cannot encode {args.args} as {signature}: {exc}") from exc
    return "0x" + (keccak(text=signature)[:4] + encoded).hex()


def _params(args: EvmReadArgs) -> list[Any]:
    if args.method in ("eth_chainId", "eth_blockNumber"):
        return []
    if args.method == "eth_getLogs":
        query = {"fromBlock": args.from_block, "toBlock": args.block, "topics": args.topics}
        return [{**query, "address": args.address} if args.address else query]
    if args.address is None:
        raise ToolError(f"{args.method} needs an address")
    if args.method == "eth_call":
        return [{"to": args.address, "data": _calldata(args)}, args.block]
    return [args.address, args.block]


def _quantity(args: EvmReadArgs, result: Any) -> int | None:
    if args.method in ("eth_call", "eth_getCode", "eth_getLogs"):
        return None
    return int(result, 16)


def _values(args: EvmReadArgs, result: str) -> list[Any]:
    """An ``eth_call`` answer decoded as ``args.returns`` (bytes as hex)."""
    from eth_abi import decode

    try:
        values = decode(args.returns, bytes.fromhex(result.removeprefix("0x")))
    except Exception as exc:  # eth_abi raises several types for short or bad data
        raise ToolError(f"cannot decode {result!r} as {args.returns}: {exc}") from exc
    return ["0x" + v.hex() if isinstance(v, bytes) else v for v in values]


def evm_read_tool(rpc_url: str, timeout_seconds: float = 10.0) -> Tool:
    """A read-only EVM tool over JSON-RPC: chain id, block number, balance, code, eth_call, logs.

    Only read methods are allowed, so it can never move funds; writes go through
    the onchain proposal tool and the DON.
    """

    async def read(args: EvmReadArgs) -> dict[str, Any]:
        import httpx  # start-up (issue 19): loaded when a tool first runs

        payload = {"jsonrpc": "2.0", "id": 1, "method": args.method, "params": _params(args)}
        async with httpx.AsyncClient(timeout=timeout_seconds) as client:
            answer = (await client.post(rpc_url, json=payload)).json()
        if "error" in answer:
            raise ToolError(f"{args.method} failed: {answer['error']}")
        result = answer.get("result")
        out = {"method": args.method, "result": result, "int": _quantity(args, result)}
        if args.method == "eth_call" and args.returns:
            out["values"] = _values(args, result)
        return out

    return Tool(
        name="evm_read",
        description="Read from the chain (no writes): chain id, block number, balance, code, "
        "eth_call (raw data, or a function signature with args and return types), logs.",
        args_model=EvmReadArgs,
        fn=read,
    )
