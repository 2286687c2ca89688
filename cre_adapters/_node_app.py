"""The node's HTTP app: one router for every endpoint, served by uvicorn (TLS from ``ssl``).

Every endpoint is a ``Route`` in ``NodeRouter.routes``, keyed by method and
path, and gets a ``Call`` (body bytes, asker, the peer's TLS certificate);
it answers ``(status, JSON bytes)``. Protocol endpoints (those with
``protocol=True``) are what slow and flaky faults apply to; ``down`` applies
to every endpoint but ``/admin``. Adding an endpoint: write an
``async def handler(call: Call) -> tuple[int, bytes]`` and register it with
``router.add("POST", "/path", handler, protocol=...)`` (see ``create_app``).
No FastAPI: a node process imports pydantic, uvicorn and its own modules only.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._don import DonConfig
from ._errors import ConfigError, CreError, SigningRefused
from ._faults import FaultSpec
from ._node import OracleNode, build_source
from ._node_log import configure_logging, event, exit_process, log
from ._protocol import HealthResponse, ObserveRequest, ReportSignRequest, SettlementSignRequest
from ._tls import der_fingerprint, fingerprint, server_context

LOOPBACK = ("127.0.0.1", "::1")
MAX_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class Call:
    """One request as a route sees it."""

    method: str
    path: str
    body: bytes
    asker: str  # "host:port" of the connection: one connection, one asker
    client_host: str
    headers: dict[str, str]
    peer_cert: str | None  # SHA-256 fingerprint of the client's TLS certificate, if any


Handler = Callable[[Call], Awaitable[tuple[int, bytes]]]


@dataclass
class NodeRouter:
    """Method and path to handler; which paths are protocol endpoints (faults apply there)."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    protocol: set[str] = field(default_factory=set)

    def add(self, method: str, path: str, handler: Handler, *, protocol: bool = False) -> None:
        """Register ``handler`` for ``method path`` (refuses a second handler for one route)."""
        if (method, path) in self.routes:
            raise ValueError(f"{method} {path} has a handler already")
        self.routes[(method, path)] = handler
        if protocol:
            self.protocol.add(path)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI: answer one HTTP request from its route (404/405 otherwise)."""
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to do
        method, path = scope.get("method", "GET"), scope.get("path", "")
        handler = self.routes.get((method, path))
        try:
            body = await _read_body(receive)
        except CreError as exc:
            await _respond(send, *_error_bytes(413, str(exc)))
            return
        if handler is None:
            known = any(p == path for _, p in self.routes)
            status, answer = _error_bytes(
                405 if known else 404,
                f"{'method not allowed' if known else 'no route'}: {method} {path}",
            )
        else:
            client = scope.get("client") or ("", 0)
            call = Call(
                method=method,
                path=path,
                body=body,
                asker=f"{client[0]}:{client[1]}",
                client_host=str(client[0]),
                headers={
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in scope.get("headers", [])
                },
                peer_cert=_peer_cert(send),
            )
            status, answer = await _answer(handler, call)
        await _respond(send, status, answer)


async def _respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _peer_cert(send: Any) -> str | None:
    """The fingerprint of the client's TLS certificate (uvicorn's transport), or None."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return der_fingerprint(der) if der else None


async def _read_body(receive: Any) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise CreError(f"request body over {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(handler: Handler, call: Call) -> tuple[int, bytes]:
    """Run ``handler``; a node's refusal or failure becomes a JSON error answer."""
    try:
        return await handler(call)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ())) or 'body'}: {err.get('msg')}"
            for err in exc.errors()
        ]
        return _error_bytes(422, "malformed request: " + "; ".join(problems), problems=problems)
    except SigningRefused as exc:
        log.warning("refused", extra={"fields": {"reason": str(exc)}})
        return _error_bytes(409, f"refused to sign: {exc}", cause="refused")
    except CreError as exc:
        return _error_bytes(400, str(exc))


def _error_bytes(status: int, message: str, **extra: Any) -> tuple[int, bytes]:
    return status, json.dumps({"error": message, **extra}).encode()


def _ok(body: str) -> tuple[int, bytes]:
    return 200, body.encode()


def _with_body(
    handler: Callable[[bytes, str], Awaitable[tuple[int, bytes]]],
) -> Handler:
    """A ``(body, asker)`` handler as a router ``Handler``."""

    async def route(call: Call) -> tuple[int, bytes]:
        return await handler(call.body, call.asker)

    return route


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


# the routes -------------------------------------------------------------------------------
class _Routes:
    """The node's endpoints: protocol (observe, sign), health, admin."""

    def __init__(self, node: OracleNode) -> None:
        self.node = node
        self.token = read_admin_token(node.don.admin_token_file)
        self.owner = fingerprint(node.don.owner_cert) if node.don.owner_cert else None

    def install(self, router: NodeRouter) -> None:
        router.add("POST", "/observe", self.observe, protocol=True)
        router.add("POST", "/sign/settlement", self.sign_settlement, protocol=True)
        router.add("POST", "/sign/report", self.sign_report, protocol=True)
        from .workflow._routes import workflow_routes  # workflows as code: POST /workflow/*

        for path, handler in workflow_routes(self.node).items():
            router.add("POST", path, _with_body(handler), protocol=True)
        router.add("GET", "/health", self.health)
        router.add("GET", "/admin/fault", self.get_fault)
        router.add("PUT", "/admin/fault", self.put_fault)

    async def observe(self, call: Call) -> tuple[int, bytes]:
        started = time.perf_counter()
        signed = await self.node.observe(ObserveRequest.model_validate_json(call.body), call.asker)
        obs = signed.observation
        event("observed", round=obs.request_id, value=obs.value, ms=_ms(started))
        return _ok(signed.model_dump_json())

    async def sign_settlement(self, call: Call) -> tuple[int, bytes]:
        started = time.perf_counter()
        request = SettlementSignRequest.model_validate_json(call.body)
        await self.node.cross_check(request.request_id, request.feed, request.observations)
        answer = self.node.sign_settlement(request)
        event("signed", round=request.request_id, price=answer.price, ms=_ms(started))
        return _ok(answer.model_dump_json())

    async def sign_report(self, call: Call) -> tuple[int, bytes]:
        started = time.perf_counter()
        request = ReportSignRequest.model_validate_json(call.body)
        for item in request.fields:
            await self.node.cross_check(request.request_id, item.feed, item.observations)
        answer = self.node.sign_report(request)
        modes = [f.mode for f in request.fields]
        event(
            "signed", round=request.request_id, modes=modes, values=answer.values, ms=_ms(started)
        )
        return _ok(answer.model_dump_json())

    async def health(self, call: Call) -> tuple[int, bytes]:
        node = self.node
        return _ok(
            HealthResponse(
                status="ok",
                node=node.spec.name,
                address=node.spec.address,
                don_id=node.don.don_id,
                config_version=node.don.config_version,
                last_round=node.last_round,
                last_round_at=node.last_round_at,
                rounds=node.rounds,
                fault=node.fault.mode,
            ).model_dump_json()
        )

    async def get_fault(self, call: Call) -> tuple[int, bytes]:
        refused = self.admin_refused(call)
        if refused:
            return _error_bytes(403, refused)
        return _ok(self.node.fault.model_dump_json())

    async def put_fault(self, call: Call) -> tuple[int, bytes]:
        refused = self.admin_refused(call)
        if refused:
            event("admin-refused", reason=refused)
            return _error_bytes(403, refused)
        fault = FaultSpec.model_validate_json(call.body)
        self.node.set_fault(fault)
        event("fault-set", **fault.model_dump())
        if fault.mode == "down" and fault.kill:
            event("killed", reason="down fault with kill: the process exits")
            exit_process(0, after=0.2)  # after this answer went out
        return _ok(self.node.fault.model_dump_json())

    def admin_refused(self, call: Call) -> str | None:
        """Why an admin request is refused, or None if it may proceed.

        Loopback (the default): the admin token. Off loopback: only over TLS,
        with the DON owner's client certificate, and the token too when this
        host has the token file.
        """
        loopback = call.client_host in LOOPBACK
        owner = self.owner is not None and call.peer_cert == self.owner
        if not loopback and not owner:
            if self.owner is None:
                return f"admin is only served to loopback, not {call.client_host}"
            return f"admin off loopback ({call.client_host}) needs the DON owner's TLS certificate"
        if self.token is None:
            if owner:
                return None  # a node host without the token file: the owner's certificate
            return "admin is disabled: the DON config names no admin_token_file"
        given = call.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return (
                "wrong or missing admin token (Authorization: Bearer <token from admin_token_file>)"
            )
        return None


def read_admin_token(path: Path | None) -> str | None:
    """The admin token from its file, or None when admin is disabled or the file is unreadable."""
    if path is None:
        return None
    try:
        token = path.read_text().strip()
    except OSError:
        return None
    return token or None


class FaultGate:
    """ASGI middleware: down, slow and flaky (admin always answers).

    ``down`` behaves like a dead process to everyone but the admin: the
    connection is dropped without an answer (``/health`` too), so askers see
    what they see when a node crashed.
    """

    def __init__(self, app: NodeRouter, node: OracleNode) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer for a faulty node, or pass the request on."""
        path = scope.get("path", "") if scope["type"] == "http" else "/admin"
        fault = self.node.fault
        mode = fault.mode
        if mode == "none" or path.startswith("/admin"):
            await self.app(scope, receive, send)
        elif mode == "down":
            await _hang_up(scope, receive, send)
        elif path not in self.app.protocol:
            await self.app(scope, receive, send)
        elif mode == "crash-mid-round" and path.startswith("/sign/"):
            event("crashed", path=path, reason="crash-mid-round fault: dies before signing")
            await _hang_up(scope, receive, send)
            exit_process(70)
        elif mode == "slow" and fault.slow_at == "server":
            await asyncio.sleep(fault.delay)  # starts late: what it does is of the later moment
            await self.app(scope, receive, send)
        elif mode == "slow":
            # the node works at once (its state, e.g. its last round, is of the moment the
            # request came); its answer is what is late, as over a slow link
            await self.app(scope, receive, self._late(send, fault.delay))
        elif self.node.injects_error():
            event("injected-error", path=path)
            await _respond(send, *_error_bytes(500, "injected error (flaky fault mode)"))
        else:
            await self.app(scope, receive, send)

    @staticmethod
    def _late(send: Any, delay: float) -> Any:
        async def late(message: Any) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(delay)
            await send(message)

        late.__self__ = getattr(send, "__self__", None)  # type: ignore[attr-defined]
        return late


async def _hang_up(scope: Any, receive: Any, send: Any) -> None:
    """Drop the connection without answering, as a dead node would.

    uvicorn's ``send`` belongs to the request cycle that owns the transport;
    aborting it resets the connection. A server without that (the in-process
    test client) gets a 503 instead.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        await _respond(send, *_error_bytes(503, "node is down (fault mode)"))
        return
    transport.abort()
    cycle = send.__self__
    for _ in range(200):  # return only once uvicorn saw the connection go (else it answers 500)
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.001)


def create_app(node: OracleNode) -> Any:
    """The node's HTTP API (an ASGI app) around ``node``: the one router behind the fault gate."""
    router = NodeRouter()
    _Routes(node).install(router)
    return FaultGate(router, node)


def tls_context(don: DonConfig, name: str) -> ssl.SSLContext | None:
    """The node's server context on a TLS DON (owner and peer nodes may connect), else None.

    Raises:
        ConfigError: the node's TLS key is missing or does not match its pinned certificate.
    """
    spec = don.node(name)
    if not don.tls:
        return None
    assert spec.tls_cert is not None and don.owner_cert is not None
    if spec.tls_key is None:
        raise ConfigError(f"node {name}: the DON uses TLS but names no tls_key for it")
    peers = [n.tls_cert for n in don.nodes if n.tls_cert and n.name != name]
    return server_context(spec.tls_cert, spec.tls_key, [don.owner_cert, *peers])


def serve(don: DonConfig, name: str, private_key: bytes) -> None:
    """Run node ``name`` of ``don`` until interrupted (blocks)."""
    import uvicorn

    spec = don.node(name)
    configure_logging(name)
    context = tls_context(don, name)
    node = OracleNode(don, spec, private_key, build_source(spec))
    event(
        "start", address=spec.address, url=spec.url, fault=spec.fault.mode, tls=context is not None
    )
    config = uvicorn.Config(
        create_app(node),
        host=spec.listen or spec.host,
        port=spec.port,
        loop="auto",  # uvloop where installed (the `fast` extra), else asyncio
        http="auto",  # httptools where installed, else h11
        lifespan="off",
        log_level="warning",
        log_config=None,  # uvicorn's loggers keep the JSON handler set above
        access_log=False,
    )
    config.load()
    if context is not None:
        config.ssl = context  # our own context: pinned client certificates, TLS 1.3
    uvicorn.Server(config).run()


__all__ = [
    "Call",
    "FaultGate",
    "NodeRouter",
    "create_app",
    "read_admin_token",
    "serve",
    "tls_context",
]
