"""The coordinator's httpx client sends each request in one write (head and body together).

httpcore writes a request's head and body separately: two TLS records, two
socket sends and two wake-ups of the node per request. ``CoalescingBackend``
holds the writes until httpcore reads the answer. These tests pin that down
on a real socket and check that every pool of ``HttpxClient`` (plain, and one
per node on a TLS DON) goes through it; the transport conformance suite runs
the same client through keep-alive, deadlines, hang-ups and closed idle
connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpcore
import pytest

from vouch.cre_adapters import DonConfig, HttpxClient, WireTimeout
from vouch.cre_adapters._tls import client_context, make_identity, server_context
from vouch.cre_adapters._transport import CoalescingBackend, _transport_of

from ._hosts import bundles
from .test_transport_conformance import _until


def _backends(client: HttpxClient) -> list[object]:
    inner = client._client
    pools = [inner._transport] + [t for t in inner._mounts.values() if t is not None]
    return [t._pool._network_backend for t in pools]  # type: ignore[attr-defined]


def test_every_pool_of_the_client_sends_through_the_coalescing_backend() -> None:
    client = HttpxClient()
    backends = _backends(client)
    assert backends and all(isinstance(b, CoalescingBackend) for b in backends)
    asyncio.run(client.aclose())


def test_every_node_pool_of_a_tls_don_coalesces(tmp_path: Path) -> None:
    made = bundles(tmp_path / "b", ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"], 9443)
    don = DonConfig.load(made.owner / "don.json")
    assert don.tls
    client = HttpxClient(don)
    backends = _backends(client)
    assert len(backends) == 1 + len(don.nodes)  # the default pool and one pinned pool per node
    assert all(isinstance(b, CoalescingBackend) for b in backends)
    asyncio.run(client.aclose())


def test_writes_wait_for_the_read_and_go_out_in_one_send() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], bytes]:
        chunks: list[bytes] = []
        before_read: list[bytes] = []
        got = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            chunk = await reader.read(65536)
            chunks.append(chunk)
            got.set()
            writer.write(b"answer")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        backend = CoalescingBackend(httpcore.AnyIOBackend())
        stream = await backend.connect_tcp("127.0.0.1", port)
        await stream.write(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\n")
        await stream.write(b"body")
        await asyncio.sleep(0.1)  # an unbuffered stream's bytes would be at the server by now
        before_read.extend(chunks)
        answer = await stream.read(100)
        await asyncio.wait_for(got.wait(), 5)
        await stream.aclose()
        server.close()
        return before_read, chunks, answer

    before_read, chunks, answer = asyncio.run(scenario())
    assert before_read == []
    assert chunks == [b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\nbody"]
    assert answer == b"answer"


def test_a_send_on_a_closed_connection_surfaces_at_the_read() -> None:
    """As in httpcore: a failed send is not the error; the read tells what became of it."""

    async def scenario() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.transport.abort()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stream = await CoalescingBackend(httpcore.AnyIOBackend()).connect_tcp("127.0.0.1", port)
        await asyncio.sleep(0.1)
        await stream.write(b"GET / HTTP/1.1\r\n\r\n")  # held: no error here
        try:
            data = await stream.read(100)  # the send fails (reset) or not; the read says closed
        except httpcore.ReadError:
            data = b""
        assert data == b""
        await stream.aclose()
        server.close()

    asyncio.run(scenario())


def test_every_stream_is_known_down_to_its_socket_and_closed_without_awaiting(
    tmp_path: Path,
) -> None:
    """``HttpxClient.aclose`` closes sockets without awaiting, through the layers of
    httpcore and anyio (their private layout); a plain and a TLS stream both reach it."""
    server_cert = make_identity("server", ["127.0.0.1"], tmp_path / "server.key")
    client_cert = make_identity("client", [], tmp_path / "client.key")

    async def scenario() -> None:
        closed = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                await reader.read()  # until the client's side is gone
            closed.set()
            writer.close()

        for tls in (False, True):
            closed.clear()
            context = server_context(server_cert, tmp_path / "server.key", [client_cert])
            server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context if tls else None)
            port = server.sockets[0].getsockname()[1]
            backend = CoalescingBackend(httpcore.AnyIOBackend())
            stream = await backend.connect_tcp("127.0.0.1", port)
            if tls:
                stream = await stream.start_tls(
                    client_context(server_cert, client_cert, tmp_path / "client.key"),
                    server_hostname="127.0.0.1",
                )
            assert isinstance(_transport_of(stream._inner), asyncio.Transport)
            assert backend._open == {stream}  # the plain stream under TLS is not counted twice
            backend.close_all()
            assert not backend._open
            await asyncio.wait_for(closed.wait(), 5)  # the server saw the client go
            with pytest.raises(httpcore.ConnectError, match="closed"):
                await backend.connect_tcp("127.0.0.1", port)  # and nothing new is kept
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())


def test_a_handshake_a_deadline_cuts_short_closes_its_socket_at_once() -> None:
    """A node that accepts TCP and stalls its TLS handshake: each ask's deadline cancels the
    handshake, and httpcore closes the socket only when a handshake fails, not when it is
    cancelled. The socket must close with the ask, not when the client closes."""

    async def scenario() -> tuple[int, int]:
        accepted = 0
        hung_up = 0

        async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted, hung_up
            accepted += 1
            with contextlib.suppress(ConnectionError):
                await reader.read()  # the ClientHello, never answered, until the client goes
            hung_up += 1
            writer.close()

        server = await asyncio.start_server(stall, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with HttpxClient() as client:
            for _ in range(3):
                with pytest.raises(WireTimeout):
                    await client.post(f"https://127.0.0.1:{port}/observe", b"{}", 0.3)
            await _until(lambda: hung_up == accepted)  # the client is still open: only asks ended
            counts = accepted, hung_up
        server.close()
        await server.wait_closed()
        return counts

    accepted, hung_up = asyncio.run(scenario())
    assert accepted == 3
    assert hung_up == 3, f"{accepted - hung_up} stalled handshake(s) left their socket open"
