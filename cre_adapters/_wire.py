"""A lean HTTP/1.1 client for the coordinator: JSON POSTs over kept-alive loopback connections.

A round asks every node at once, so what one request costs the asking
process multiplies by n. httpx spends most of a loopback round trip in its
own machinery (connection-pool bookkeeping, anyio, h11); this client is an
``asyncio.Protocol`` that writes one request and parses one
``Content-Length`` response per connection, keeping idle connections per
node for the next request. No redirects, no chunked bodies, no TLS: the
nodes are vouch's own and answer with a length.

A request that fails on a reused idle connection before any byte of the
answer arrived is retried once on a fresh one (the node may have closed the
idle connection meanwhile); any other failure is the node's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import cast
from urllib.parse import urlsplit

MAX_HEAD = 16 * 1024
MAX_BODY = 8 * 1024 * 1024


class WireError(Exception):
    """The node could not be reached, or closed the connection without a whole answer."""


class WireTimeout(WireError):
    """No whole answer within the deadline."""


class _Connection(asyncio.Protocol):
    """One kept-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False
        self._buffer = bytearray()
        self._answer: asyncio.Future[list[tuple[int, bytes, bool]]] | None = None
        self._expected = 0
        self._answers: list[tuple[int, bytes, bool]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport (in the node processes) is no asyncio.Transport subclass
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            got = "part of an answer" if self._buffer else "no answer"
            self._answer.set_exception(WireError(f"connection closed with {got}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._answer is None or self._answer.done():
            return
        try:
            while len(self._answers) < self._expected:
                parsed = _parse(self._buffer)
                if parsed is None:
                    return
                status, body, keep, used = parsed
                del self._buffer[:used]
                self._answers.append((status, body, keep))
        except WireError as exc:
            self._answer.set_exception(exc)
            return
        self._answer.set_result(self._answers)

    def request(self, message: bytes, count: int) -> asyncio.Future[list[tuple[int, bytes, bool]]]:
        """Write ``message`` (``count`` pipelined requests); the future gets ``count`` answers."""
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._expected, self._answers = count, []
        self._buffer.clear()
        self.transport.write(message)
        return self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _parse(buffer: bytearray) -> tuple[int, bytes, bool, int] | None:
    """(status, body, keep-alive, bytes used) once ``buffer`` starts with a whole response."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise WireError("response head too large")
        return None
    lines = bytes(buffer[:end]).split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise WireError(f"not an HTTP response: {lines[0][:60]!r}") from None
    length, keep = None, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
        elif name == b"transfer-encoding":
            raise WireError("chunked answers are not supported; nodes answer with a length")
    if length is None or length > MAX_BODY:
        raise WireError(f"response without a usable content-length ({length})")
    if len(buffer) < end + 4 + length:
        return None
    return status, bytes(buffer[end + 4 : end + 4 + length]), keep, end + 4 + length


class NodeClient:
    """Kept-alive connections to many nodes; ``post`` JSON bytes, get (status, body) back.

    Bound to the event loop it is first used on; ``aclose`` closes every
    connection. Use it as an async context manager.
    """

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = defaultdict(list)
        self._busy: set[_Connection] = set()
        self._closed = False

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``url``; the status and body of the answer.

        Raises:
            WireTimeout: no whole answer within ``timeout`` seconds.
            WireError: the node is unreachable or broke the connection.
        """
        return (await self.post_many(url, body, 1, timeout))[0]

    async def post_many(
        self, url: str, body: bytes, count: int, timeout: float
    ) -> list[tuple[int, bytes]]:
        """POST ``body`` to ``url`` ``count`` times, pipelined on one connection (HTTP/1.1).

        Each is a separate request the node answers on its own, in order: what
        the equivocation echo needs, for one write and one wake-up of the node.

        Raises:
            WireTimeout: not every answer arrived within ``timeout`` seconds.
            WireError: the node is unreachable or broke the connection.
        """
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise WireError(
                f"the lean client speaks plain HTTP only, not {parts.scheme}: use HttpxClient"
            )
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            async with asyncio.timeout(timeout):
                return await self._exchange((host, port), (head + body) * count, count)
        except TimeoutError:
            raise WireTimeout(f"no answer within {timeout}s") from None

    async def _exchange(
        self, key: tuple[str, int], message: bytes, count: int
    ) -> list[tuple[int, bytes]]:
        for _ in range(2):
            conn = await self._acquire(key)
            reused = conn.used
            conn.used = True
            self._busy.add(conn)
            try:
                answers = await conn.request(message, count)
            except WireError:
                conn.close()
                if reused and not conn._buffer:
                    continue  # the node closed an idle connection: try once on a fresh one
                raise
            except BaseException:
                conn.close()  # cancelled or timed out mid-request: the connection is spent
                raise
            finally:
                self._busy.discard(conn)
            if all(keep for _, _, keep in answers) and not conn.closed:
                self._idle[key].append(conn)
            else:
                conn.close()
            return [(status, answer) for status, answer, _ in answers]
        raise WireError("connection closed with no answer")  # pragma: no cover - loop returns

    async def _acquire(self, key: tuple[str, int]) -> _Connection:
        idle = self._idle[key]
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, *key)
        except OSError as exc:
            raise WireError(f"cannot connect ({exc.strerror or type(exc).__name__})") from None
        if self._closed:  # closed while this connection was being made: it is not kept
            conn.close()
            raise WireError("the client was closed while this connection was made")
        return conn

    async def aclose(self) -> None:
        """Close every connection, idle or busy, and any still being made when it completes.

        The connections close before the first await, so a cancellation cannot
        stop it halfway.
        """
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        for conn in list(self._busy):
            conn.close()
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)  # let the transports finish closing on this loop


__all__ = ["NodeClient", "WireError", "WireTimeout"]
