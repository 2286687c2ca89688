"""Transport conformance: the same tests against both coordinator clients.

``HttpxClient`` (the default) and ``NodeClient`` (the lean loopback opt-in)
must behave alike for everything the coordinator relies on: status and body,
keep-alive reuse, one connection per concurrent ask (the echo's two askers),
one deadline for the whole request, a clear error for a refused connection,
a hang-up or a node that closed an idle connection (retried once), and large
bodies. The server is a raw asyncio HTTP/1.1 server, so each behaviour is
exact; the last test asks a real node app served by uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from vouch.cre_adapters import HttpxClient, NodeClient, WireError, WireTimeout
from vouch.cre_adapters._transport import Transport

CLIENTS: dict[str, Callable[[], Transport]] = {"httpx": HttpxClient, "lean": NodeClient}


class Server:
    """A scripted HTTP/1.1 server on a free loopback port; counts connections and requests."""

    def __init__(self) -> None:
        self.connections = 0
        self.hung_up = 0  # connections the client closed
        self.requests: list[str] = []
        self.close_idle_after_answer = False
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                length = next(
                    int(v)
                    for k, _, v in (h.partition(":") for h in lines[1:])
                    if k.lower() == "content-length"
                )
                body = await reader.readexactly(length)
                self.requests.append(path)
                if path == "/hangup":
                    writer.transport.abort()
                    await writer.wait_closed()
                    return
                if path == "/stall":  # never answers; notices at once when the client goes
                    with contextlib.suppress(ConnectionError):
                        await reader.read()
                    self.hung_up += 1
                    writer.close()
                    return
                if path == "/slow":
                    await asyncio.sleep(2)
                status, answer = 200, body
                if path == "/refuse":
                    status, answer = 409, json.dumps({"error": "refused to sign: no"}).encode()
                elif path == "/big":
                    answer = json.dumps({"blob": "x" * (1024 * 1024)}).encode()
                elif path == "/peer":
                    peer = writer.get_extra_info("peername")
                    answer = json.dumps({"peer": f"{peer[0]}:{peer[1]}"}).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
                await writer.drain()
                if self.close_idle_after_answer:
                    await asyncio.sleep(0.05)  # the client holds it idle; then we drop it
                    writer.close()
                    await writer.wait_closed()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            self.hung_up += 1
            writer.close()
        except StopIteration:
            writer.close()
        except asyncio.CancelledError:
            writer.close()
            raise


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Server]:
    server = Server()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(params=sorted(CLIENTS))
def make_client(request: pytest.FixtureRequest) -> Callable[[], Transport]:
    return CLIENTS[request.param]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_status_and_body_come_back_whole(make_client: Callable[[], Transport]) -> None:
    async def go() -> None:
        async with serving() as server, make_client() as client:
            assert await client.post(server.url("/echo"), b'{"a": 1}', 2) == (200, b'{"a": 1}')
            status, body = await client.post(server.url("/refuse"), b"{}", 2)
            assert status == 409 and json.loads(body)["error"] == "refused to sign: no"

    run(go())


def test_sequential_requests_reuse_one_kept_alive_connection(
    make_client: Callable[[], Transport],
) -> None:
    async def go() -> None:
        async with serving() as server, make_client() as client:
            for i in range(5):
                assert (await client.post(server.url("/echo"), b"%d" % i, 2))[1] == b"%d" % i
            assert server.connections == 1

    run(go())


def test_concurrent_asks_use_separate_connections(make_client: Callable[[], Transport]) -> None:
    """The echo asks one node twice at once: two connections, two askers."""

    async def go() -> None:
        async with serving() as server, make_client() as client:
            answers = await asyncio.gather(
                *(client.post(server.url("/peer"), b"{}", 2) for _ in range(2))
            )
            peers = {json.loads(body)["peer"] for _, body in answers}
            assert len(peers) == 2 and server.connections == 2

    run(go())


def test_one_deadline_for_the_whole_request(make_client: Callable[[], Transport]) -> None:
    async def go() -> None:
        async with serving() as server, make_client() as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(WireTimeout, match="no answer within 0.3s"):
                await client.post(server.url("/slow"), b"{}", 0.3)
            assert loop.time() - started < 1.5
            # the client is still usable afterwards
            assert (await client.post(server.url("/echo"), b"ok", 2)) == (200, b"ok")

    run(go())


def test_refused_connection_is_a_wire_error(make_client: Callable[[], Transport]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused

    async def go() -> None:
        async with make_client() as client:
            with pytest.raises(WireError, match="cannot connect") as caught:
                await client.post(f"http://127.0.0.1:{port}/observe", b"{}", 2)
            assert not isinstance(caught.value, WireTimeout)

    run(go())


def test_hang_up_without_an_answer_is_a_wire_error(make_client: Callable[[], Transport]) -> None:
    async def go() -> None:
        async with serving() as server, make_client() as client:
            with pytest.raises(WireError) as caught:
                await client.post(server.url("/hangup"), b"{}", 2)
            assert not isinstance(caught.value, WireTimeout)
            # a fresh request retried the hang-up at most once: the node saw at most 2
            assert server.requests.count("/hangup") <= 2

    run(go())


def test_an_idle_connection_the_node_closed_is_replaced(
    make_client: Callable[[], Transport],
) -> None:
    async def go() -> None:
        async with serving() as server, make_client() as client:
            server.close_idle_after_answer = True
            for i in range(3):
                assert await client.post(server.url("/echo"), b"%d" % i, 2) == (200, b"%d" % i)
                await asyncio.sleep(0.15)  # the node drops the idle connection meanwhile
            assert server.requests == ["/echo"] * 3  # each request answered exactly once

    run(go())


def test_large_answers_arrive_whole(make_client: Callable[[], Transport]) -> None:
    async def go() -> None:
        async with serving() as server, make_client() as client:
            status, body = await client.post(server.url("/big"), b"{}", 5)
            assert status == 200 and len(json.loads(body)["blob"]) == 1024 * 1024

    run(go())


async def _until(check: Callable[[], bool], seconds: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check() and loop.time() < deadline:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("turns", range(1, 5))
def test_a_close_a_cancellation_interrupts_still_closes_every_connection(
    make_client: Callable[[], Transport], turns: int
) -> None:
    """A deadline, Ctrl-C or the end of ``asyncio.run`` may cancel the close itself.

    httpx closes its pool one connection per await: cancelled after the first,
    the others stayed open until the garbage collector found them (the
    ResourceWarning that failed unrelated tests). The client must close them all.
    """

    async def go() -> None:
        async with serving() as server:
            client = make_client()
            await asyncio.gather(*(client.post(server.url("/echo"), b"{}", 2) for _ in range(4)))
            assert server.connections == 4  # one per concurrent ask, as to four nodes
            closing = asyncio.create_task(client.aclose())
            for _ in range(turns):  # the close has begun, and has awaited turns - 1 times
                await asyncio.sleep(0)
            closing.cancel()
            await asyncio.gather(closing, return_exceptions=True)
            await _until(lambda: server.hung_up == 4)
            assert server.hung_up == 4, f"{4 - server.hung_up} connection(s) left open"

    run(go())


def test_a_connection_still_being_made_when_the_client_closes_is_not_kept(
    make_client: Callable[[], Transport],
) -> None:
    async def go() -> None:
        async with serving() as server:
            client = make_client()
            asking = asyncio.create_task(client.post(server.url("/echo"), b"{}", 2))
            await asyncio.sleep(0)  # the ask is connecting
            await client.aclose()
            with pytest.raises(WireError):
                await asking
            await _until(lambda: server.hung_up == server.connections)
            assert server.hung_up == server.connections

    run(go())


@contextlib.contextmanager
def real_node_app() -> Iterator[tuple[str, Any]]:
    """The real node app (one router, fault gate) on uvicorn in a thread."""
    import uvicorn
    from eth_account import Account

    from vouch.cre_adapters import DonConfig, MockPriceSource, NodeSpec, OracleNode, create_app
    from vouch.cre_adapters.evm import free_port

    key = Account.create()
    others = [Account.create().address for _ in range(3)]
    port = free_port()
    nodes = [NodeSpec(name="node-1", address=key.address, port=port, keystore="k")] + [
        NodeSpec(name=f"node-{i + 2}", address=a, port=port + 1 + i, keystore="k")
        for i, a in enumerate(others)
    ]
    don = DonConfig(f=1, chain_id=31337, forwarder=Account.create().address, nodes=nodes)
    node = OracleNode(don, nodes[0], bytes(key.key), MockPriceSource(7, 1))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(node), host="127.0.0.1", port=port, log_level="error", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}", node
    finally:
        server.should_exit = True
        thread.join(5)


def test_a_real_node_answers_both_clients_alike() -> None:
    from vouch.verifier import SignedObservation, recover_observation_signer

    with real_node_app() as (url, node):

        async def ask(make: Callable[[], Transport]) -> list[tuple[int, bytes]]:
            async with make() as client:
                ok = await client.post(url + "/observe", b'{"request_id":"r1","feed":"ETH/USD"}', 5)
                bad = await client.post(url + "/observe", b'{"request_id":"r1"}', 5)
                missing = await client.post(url + "/nowhere", b"{}", 5)
                return [ok, bad, missing]

        results = {name: run(ask(make)) for name, make in CLIENTS.items()}
        assert results["httpx"] == results["lean"]  # the node answers one round once
        (ok, body), (bad, problem), (missing, _) = results["httpx"]
        signed = SignedObservation.model_validate_json(body)
        assert ok == 200 and recover_observation_signer(signed) == node.spec.address
        assert bad == 422 and "feed" in json.loads(problem)["error"]
        assert missing == 404


def test_the_lean_client_refuses_https_with_a_clear_error() -> None:
    async def go() -> None:
        async with NodeClient() as client:
            with pytest.raises(WireError, match="plain HTTP only"):
                await client.post("https://127.0.0.1:1/observe", b"{}", 1)

    run(go())


def test_an_ask_cancelled_twice_still_closes_its_connection(
    make_client: Callable[[], Transport],
) -> None:
    """A deadline cancels an ask, and the stage ending cancels it again mid-clean-up."""

    async def go() -> None:
        async with serving() as server, make_client() as client:
            for turns in range(4):
                asking = asyncio.create_task(client.post(server.url("/stall"), b"{}", 5))
                await _until(lambda n=turns + 1: len(server.requests) == n)
                asking.cancel()
                for _ in range(turns):
                    await asyncio.sleep(0)
                asking.cancel()
                await asyncio.gather(asking, return_exceptions=True)
                await _until(lambda n=turns + 1: server.hung_up == n)  # the client is still open
                assert server.hung_up == turns + 1, f"cancelled after {turns} turns: left open"

    run(go())
