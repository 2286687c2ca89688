"""The bench's latency proxy: delays each direction, keeps the byte order, makes lost chunks late."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

PROXY = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "latency_proxy.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("latency_proxy", PROXY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["latency_proxy"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def through_proxy(delay: float, loss: float, payload: list[bytes]) -> tuple[bytes, float]:
    proxy_module = load()
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[:2]
    probe = await asyncio.start_server(echo, "127.0.0.1", 0)  # only to find a free port
    listen = probe.sockets[0].getsockname()[:2]
    probe.close()
    await probe.wait_closed()
    link = proxy_module.Link(listen, target, delay, 0.002, loss)
    proxy = proxy_module.LatencyProxy([link])
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection(*listen)
        started = time.perf_counter()
        for chunk in payload:
            writer.write(chunk)
            await writer.drain()
        expected = sum(len(c) for c in payload)
        got = await reader.readexactly(expected)
        elapsed = time.perf_counter() - started
        writer.close()
        await writer.wait_closed()
        return got, elapsed
    finally:
        await proxy.stop()
        server.close()
        await asyncio.sleep(0.05)  # the echo side sees the proxy's close
        await server.wait_closed()


def test_a_round_trip_costs_at_least_two_delays_and_bytes_keep_their_order() -> None:
    chunks = [os.urandom(97 * (i % 7 + 1)) for i in range(200)]
    got, elapsed = asyncio.run(through_proxy(0.05, 0.0, chunks))
    assert got == b"".join(chunks)  # every byte, in order, despite jitter
    assert elapsed >= 0.1 - 0.004  # one RTT: 2 x 50 ms, jitter at most 2 ms per direction


def test_a_lost_chunk_arrives_a_retransmission_timeout_late() -> None:
    got, elapsed = asyncio.run(through_proxy(0.01, 1.0, [b"ping"]))
    assert got == b"ping"
    assert elapsed >= 2 * 0.2  # both directions lost once: two RTOs of at least 200 ms
