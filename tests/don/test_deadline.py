"""The coordinator's timeout is each stage's deadline, not each node's: late asks get what is left.

The "nodes" here are loopback HTTP servers of the test's own that fail or hang
on cue, so the order of failures is exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from eth_account import Account

from vouch.cre_adapters import Coordinator, DonConfig, NodeSpec, ObserveRequest, QuorumNotReached
from vouch.cre_adapters.evm import free_port

Behaviour = Callable[[], Awaitable[bytes | None]]  # None: hang until the asker gives up


async def fail_after(seconds: float) -> bytes:
    await asyncio.sleep(seconds)
    body = b'{"error": "boom"}'
    return b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


async def hang() -> None:
    await asyncio.sleep(5)  # past the asker's deadline; the server closes the connection then


@asynccontextmanager
async def fake_nodes(behaviours: list[Behaviour]) -> AsyncIterator[tuple[list[int], list[str]]]:
    """One loopback server per behaviour; yields their ports and the paths each was asked."""
    asked: list[str] = []
    servers = []
    ports = []
    open_writers: set[asyncio.StreamWriter] = set()
    tasks: set[asyncio.Task[None]] = set()

    def handler(behave: Behaviour) -> Callable[..., Awaitable[None]]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            open_writers.add(writer)
            tasks.add(asyncio.current_task())  # type: ignore[arg-type]
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                asked.append(head.split(b" ")[1].decode())
                answer = await behave()
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
            finally:
                writer.close()
                open_writers.discard(writer)

        return serve

    for behave in behaviours:
        port = free_port()
        servers.append(await asyncio.start_server(handler(behave), "127.0.0.1", port))
        ports.append(port)
    try:
        yield ports, asked
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in servers:
            server.close()
            await server.wait_closed()


def don_at(ports: list[int], tmp: Path) -> DonConfig:
    nodes = [
        NodeSpec(
            name=f"node-{i + 1}",
            address=Account.create().address,
            port=port,
            keystore=tmp / f"node-{i + 1}.json",
        )
        for i, port in enumerate(ports)
    ]
    return DonConfig(
        f=1, chain_id=31337, forwarder=Account.create().address, nodes=nodes, echo=False
    )


def test_a_node_asked_late_gets_only_what_is_left_of_the_stage_deadline(tmp_path: Path) -> None:
    """3 asked at once; one fails at 0.6 s, so the fourth is asked then and hangs.

    With a per-node timeout the round would end at 0.6 + 1.0 s; the stage ends at 1.0 s.
    """

    async def scenario() -> tuple[float, QuorumNotReached]:
        # the coordinator's first round starts at the second node: node-2, node-3, node-4 first
        async with fake_nodes([hang, fail_after_06, hang, hang]) as (ports, _):
            coordinator = Coordinator(don_at(ports, tmp_path), timeout=1.0, hedge_after=30)
            started = time.perf_counter()
            with pytest.raises(QuorumNotReached) as info:
                await coordinator.observe(ObserveRequest(request_id="late", feed="ETH/USD"))
            return time.perf_counter() - started, info.value

    async def fail_after_06() -> bytes:
        return await fail_after(0.6)

    elapsed, error = asyncio.run(scenario())
    assert 0.95 <= elapsed < 1.4, elapsed
    assert error.failures["node-2"].startswith("HTTP 500")
    assert "no answer within 1.0s" in error.failures["node-1"]  # asked at 0.6 s, cut at 1.0 s
    assert set(error.failures) == {"node-1", "node-2", "node-3", "node-4"}
