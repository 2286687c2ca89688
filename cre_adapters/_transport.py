"""The coordinator's (and a cross-checking node's) HTTP client: httpx, kept alive, mutual TLS.

``HttpxClient`` is the default: one kept-alive connection pool per node,
and on a DON with pinned certificates (``DonConfig.tls``) each node's pool
trusts exactly that node's certificate and shows the caller's own (the
owner's, or a node's for cross-checks). ``cre_adapters._wire.NodeClient`` is
the lean plain-HTTP opt-in for loopback DONs (``VOUCH_DON_CLIENT=lean``);
both pass the transport conformance suite (tests/don/test_transport_conformance.py).

Both answer ``post(url, body, timeout) -> (status, body)`` within one
deadline for the whole request, and raise ``WireTimeout`` / ``WireError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self
from urllib.parse import urlsplit

from ._don import DonConfig, NodeSpec
from ._errors import ConfigError
from ._tls import client_context
from ._wire import NodeClient, WireError, WireTimeout

if TYPE_CHECKING:
    import httpx

KEEPALIVE_SECONDS = 60.0


class Transport(Protocol):
    """What the coordinator needs from an HTTP client."""

    async def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        """POST JSON ``body`` to ``url``; the answer's status and body."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


class HttpxClient:
    """httpx with keep-alive; with a TLS DON, one pinned mutual-TLS pool per node.

    Args:
        don: the DON whose nodes are asked (None: plain HTTP to any URL).
        cert: our own certificate (PEM) to show; default the DON owner's.
        key: its private key file; default the DON's ``owner_key``.
    """

    def __init__(
        self, don: DonConfig | None = None, cert: str | None = None, key: Path | None = None
    ) -> None:
        import httpx  # a node process that never asks another node does not load it

        limits = httpx.Limits(
            max_connections=None, max_keepalive_connections=None, keepalive_expiry=KEEPALIVE_SECONDS
        )
        mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
        self._backends: list[CoalescingBackend] = []
        if don is not None and don.tls:
            cert = cert or don.owner_cert
            key = key or don.owner_key
            for node in don.nodes:
                mounts[_origin(node)] = self._coalescing(
                    httpx.AsyncHTTPTransport(verify=_pinned(node, cert, key), limits=limits)
                )
        self._client = httpx.AsyncClient(
            transport=self._coalescing(httpx.AsyncHTTPTransport(limits=limits, trust_env=False)),
            timeout=None,
            mounts=mounts,
            trust_env=False,
            follow_redirects=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``url`` within ``timeout`` seconds in all.

        A request the node's side closed before any answer on a reused idle
        connection is sent once more on a fresh one (as the lean client does).

        Raises:
            WireTimeout: no whole answer within ``timeout`` seconds.
            WireError: the node is unreachable, failed the TLS pin, or broke the connection.
        """
        import httpx

        headers = {"content-type": "application/json"}
        try:
            async with asyncio.timeout(timeout):
                for attempt in range(2):
                    try:
                        answer = await self._client.post(url, content=body, headers=headers)
                        return answer.status_code, answer.content
                    except httpx.RemoteProtocolError:
                        if attempt:
                            raise
        except TimeoutError:
            raise WireTimeout(f"no answer within {timeout}s") from None
        except httpx.ConnectError as exc:
            raise WireError(f"cannot connect ({_reason(exc)})") from None
        except httpx.HTTPError as exc:
            raise WireError(f"connection failed ({_reason(exc)})") from None
        raise WireError("connection closed with no answer")  # pragma: no cover

    async def aclose(self) -> None:
        """Close every connection, even when a cancellation interrupts the close.

        Every socket is closed first, at once and without awaiting: httpx's own
        close awaits once per connection, and a cancellation arriving meanwhile
        (a deadline, Ctrl-C, the end of ``asyncio.run``) would leave the rest
        open. A connection still being made is closed as it completes.
        """
        for backend in self._backends:
            backend.close_all()
        await self._client.aclose()

    def _coalescing(self, transport: httpx.AsyncHTTPTransport) -> httpx.AsyncHTTPTransport:
        """``transport`` sending each request in one write (see ``CoalescingBackend``).

        httpx takes no network backend, so it goes into the transport's connection
        pool (httpcore's ``network_backend``, which httpx does not expose); a
        pool without one keeps its own backend and behaves as before.
        """
        pool = getattr(transport, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        if inner is not None and not isinstance(inner, CoalescingBackend):
            backend = CoalescingBackend(inner)
            pool._network_backend = backend  # type: ignore[union-attr]
            self._backends.append(backend)
        return transport


class CoalescingBackend:
    """An httpcore network backend whose streams send what was written in one go, at the read.

    httpcore writes a request's head and its body separately: two TLS records
    and two socket sends, so the node is woken twice and parses twice, per
    request. Held until the first read (the moment httpcore waits for the
    answer, and HTTP/1.1 without ``Expect: 100-continue`` sends nothing else
    first), they go as one. A failed send is what it is in httpcore: the read
    that follows tells (the answer, or the error of a closed connection).

    It also knows every connection it opened that is not closed yet, so
    ``close_all`` can close them all at once, without awaiting.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._open: set[_CoalescingStream] = set()
        self._closed = False

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> _CoalescingStream:
        return self._track(await self._inner.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> _CoalescingStream:
        return self._track(await self._inner.connect_unix_socket(*args, **kwargs))

    def _track(self, inner: Any) -> _CoalescingStream:
        stream = _CoalescingStream(inner, self._open)
        if self._closed:
            import httpcore

            stream.close_now()
            raise httpcore.ConnectError("the client was closed while this connection was made")
        return stream

    def close_all(self) -> None:
        """Close every connection this backend opened, and any it completes later.

        Synchronous on purpose: no cancellation can stop it halfway.
        """
        self._closed = True
        for stream in list(self._open):
            stream.close_now()

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CoalescingStream:
    """One connection: writes are buffered and sent together before the next read."""

    def __init__(self, inner: Any, registry: set[_CoalescingStream]) -> None:
        self._inner = inner
        self._pending: list[bytes] = []
        self._registry = registry
        registry.add(self)

    async def _flush(self, timeout: float | None) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        await self._inner.write(data, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self._pending.append(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore

        try:
            with contextlib.suppress(httpcore.WriteError):  # as httpcore does for a failed send:
                await self._flush(timeout)  # the read tells what became of the request
            return bytes(await self._inner.read(max_bytes, timeout))
        except asyncio.CancelledError:
            # an answer cut short spends the connection; httpcore closes it too, but in a
            # clean-up that a second cancellation (a deadline, then the stage's end) cuts short
            self.close_now()
            raise

    async def aclose(self) -> None:
        self._pending.clear()
        self._registry.discard(self)
        await self._inner.aclose()

    def close_now(self) -> None:
        """Close the socket now, without awaiting (its transport closes on the next loop turn)."""
        self._pending.clear()
        self._registry.discard(self)
        transport = _transport_of(self._inner)
        if transport is not None:
            transport.abort()

    async def start_tls(self, *args: Any, **kwargs: Any) -> _CoalescingStream:
        await self._flush(kwargs.get("timeout"))
        try:
            tls = await self._inner.start_tls(*args, **kwargs)
        except BaseException:
            # httpcore closes the socket when the handshake fails, not when a deadline
            # cancels it: a node that stalls its handshake would keep one open per attempt
            self.close_now()
            raise
        wrapped = _CoalescingStream(tls, self._registry)
        self._registry.discard(self)  # the TLS stream owns the same socket now
        return wrapped

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _transport_of(stream: Any) -> Any:
    """The asyncio transport under an httpcore stream.

    httpcore's ``AnyIOStream`` wraps an anyio stream (a ``TLSStream`` wraps the
    socket stream), which holds the transport. None when a library's layout
    differs (tests/don/test_transport_coalescing.py guards it).
    """
    inner = getattr(stream, "_stream", None)
    while inner is not None and not hasattr(inner, "_transport"):
        inner = getattr(inner, "transport_stream", None)
    return getattr(inner, "_transport", None)


def _origin(node: NodeSpec) -> str:
    parts = urlsplit(node.url)
    return f"{parts.scheme}://{parts.netloc}"


def _pinned(node: NodeSpec, cert: str | None, key: Path | None) -> ssl.SSLContext:
    assert node.tls_cert is not None
    try:
        return client_context(node.tls_cert, cert, key)
    except ConfigError as exc:
        raise ConfigError(f"node {node.name}: {exc}") from None


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
        return f"TLS: the node's certificate is not the one the DON config pins: {text}"
    return text


def open_client(don: DonConfig) -> HttpxClient | NodeClient:
    """The coordinator's client for ``don``: httpx, or the lean one if opted in and plain HTTP.

    ``VOUCH_DON_CLIENT=lean`` selects ``NodeClient`` for a loopback DON without TLS.

    Raises:
        ConfigError: the lean client was asked for a TLS DON.
    """
    if os.environ.get("VOUCH_DON_CLIENT", "httpx") == "lean":
        if don.tls:
            raise ConfigError(
                "VOUCH_DON_CLIENT=lean speaks plain HTTP only; this DON uses TLS: unset it"
            )
        return NodeClient()
    return HttpxClient(don)


def node_client(don: DonConfig, node: NodeSpec) -> HttpxClient:
    """A node's client for asking its peers (cross-checks): it shows its own certificate."""
    return HttpxClient(don, cert=node.tls_cert, key=node.tls_key)


__all__ = ["HttpxClient", "Transport", "WireError", "WireTimeout", "node_client", "open_client"]
