"""One oracle node: observes with its own data source, signs only what it re-derives.

Run as its own OS process (``vouch node run --don FILE --node NAME``); the
coordinator talks to it over HTTP.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from eth_account import Account
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from verifier import (
    Observation,
    ReportBody,
    SettlementPayload,
    SignatureError,
    SignedObservation,
    encode_report,
    median,
    recover_observation_signer,
    report_context,
    report_digest,
    sign_observation,
    sign_report,
)

from ._consensus import within_band
from ._don import DonConfig, NodeSpec
from ._errors import ConfigError, CreError, SigningRefused
from ._faults import FaultSpec, corrupt, lie
from ._protocol import HealthResponse, ObserveRequest, SettlementSignRequest, SignResponse
from ._sources import (
    DataSource,
    EvmReadSource,
    HttpJsonSource,
    MockPriceSource,
    MockRatesSource,
)

MAX_CLOCK_SKEW = 60
FUTURE_SKEW = 5
MEMORY = 1024  # rounds whose observation a node remembers (it answers a round once)
log = logging.getLogger("vouch.node")
PROTOCOL_PATHS = ("/observe", "/sign/")


class OracleNode:
    """The node's logic, separate from HTTP so it can be tested and reused.

    Args:
        don: the DON this node belongs to.
        spec: this node's own entry in ``don``.
        private_key: the node's signing key (decrypted from its keystore).
        source: where the node reads prices.
    """

    def __init__(self, don: DonConfig, spec: NodeSpec, private_key: bytes, source: DataSource):
        self.don = don
        self.spec = spec
        self._key = private_key
        self._source = source
        self._wrong_key = bytes(Account.create().key)
        self._seen: OrderedDict[str, SignedObservation] = OrderedDict()
        self._asked: dict[str, int] = {}
        self._observing = asyncio.Lock()  # one observation per round, even when asked twice at once
        self.last_round: str | None = None
        self.last_round_at: float | None = None
        self.rounds = 0
        self.set_fault(spec.fault)

    def set_fault(self, fault: FaultSpec) -> None:
        """Switch this node's fault mode (``mode="none"``: honest)."""
        self.fault = fault
        self._draws = random.Random(fault.seed)

    def injects_error(self) -> bool:
        """Flaky mode: True when this request should fail."""
        return self.fault.mode == "flaky" and self._draws.random() < self.fault.error_rate

    async def observe(self, request: ObserveRequest) -> SignedObservation:
        """Fetch the feed and sign the observation; the same answer for every ask of a round.

        An honest node observes a round once and repeats that signed answer; an
        equivocating one signs a new, different value each time it is asked.
        """
        async with self._observing:
            return await self._observe(request)

    async def _observe(self, request: ObserveRequest) -> SignedObservation:
        key = f"{request.request_id}|{request.feed}"
        if self.fault.mode != "equivocate" and key in self._seen:
            return self._seen[key]
        now = int(time.time())
        at = now - self.fault.stale_by if self.fault.mode == "stale" else now
        quote = await self._source.fetch(request.feed, at)
        observation = Observation(
            request_id=request.request_id,
            feed=request.feed,
            value=self._faulty_value(key, quote.value),
            observed_at=quote.observed_at,
            node=self.spec.address,
        )
        signed = self._sign_observation(observation)
        self._remember(key, signed)
        self._mark_round(request.request_id)
        return signed

    def _faulty_value(self, key: str, value: int) -> int:
        if self.fault.mode == "lie":
            return lie(value, self.fault.lie_bps)
        if self.fault.mode == "equivocate":
            asked = self._asked[key] = self._asked.get(key, -1) + 1
            return lie(value, asked * self.fault.lie_bps)
        return value

    def _sign_observation(self, observation: Observation) -> SignedObservation:
        signed = sign_observation(observation, self._signing_key())
        if self.fault.mode == "bad-signature":
            return SignedObservation(observation=observation, signature=corrupt(signed.signature))
        return signed

    def _signing_key(self) -> bytes:
        return self._wrong_key if self.fault.mode == "wrong-key" else self._key

    def _remember(self, key: str, signed: SignedObservation) -> None:
        self._seen[key] = signed
        while len(self._seen) > MEMORY:
            old, _ = self._seen.popitem(last=False)
            self._asked.pop(old, None)

    def _mark_round(self, request_id: str) -> None:
        if request_id != self.last_round:
            self.rounds += 1
        self.last_round = request_id
        self.last_round_at = time.time()

    def sign_settlement(self, request: SettlementSignRequest) -> SignResponse:
        """Re-derive the report from the signed observations and sign it.

        Raises:
            SigningRefused: if anything in the request is not what this node derives itself.
        """
        meta = request.metadata
        self._check_metadata(meta.don_id, meta.config_version, meta.timestamp)
        price = median(self._verified_values(request))
        body = ReportBody(
            chain_id=self.don.chain_id,
            receiver=request.receiver,
            timestamp=meta.timestamp,
            action_hash=bytes.fromhex(request.action_hash[2:]),
            payload=SettlementPayload(trade_id=request.trade_id, price=price).encode(),
        )
        digest = report_digest(
            encode_report(meta, body), report_context(self.don.digest(), request.sequence)
        )
        signature = sign_report(digest, self._signing_key())
        if self.fault.mode == "bad-signature":
            signature = corrupt(signature)
        self._mark_round(request.request_id)
        return SignResponse(
            node=self.spec.name,
            signer=self.spec.address,
            signature="0x" + signature.hex(),
            digest="0x" + digest.hex(),
            price=price,
        )

    def _check_metadata(self, don_id: int, config_version: int, timestamp: int) -> None:
        if (don_id, config_version) != (self.don.don_id, self.don.config_version):
            raise SigningRefused(
                f"report names DON {don_id} v{config_version}, this node serves "
                f"DON {self.don.don_id} v{self.don.config_version}"
            )
        skew = abs(int(time.time()) - timestamp)
        if skew > MAX_CLOCK_SKEW:
            raise SigningRefused(f"report timestamp {timestamp} is {skew}s from this node's clock")

    def _verified_values(self, request: SettlementSignRequest) -> list[int]:
        """The observed values, after every check the coordinator made, made again."""
        signers = set(self.don.signers)
        seen: set[str] = set()
        values: list[int] = []
        now = int(time.time())
        for signed in request.observations:
            obs = signed.observation
            if (obs.request_id, obs.feed) != (request.request_id, request.feed):
                raise SigningRefused(f"observation from {obs.node} is for another request or feed")
            age_problem = observation_age_problem(obs.observed_at, now, self.don)
            if age_problem:
                raise SigningRefused(f"observation from {obs.node}: {age_problem}")
            try:
                signer = recover_observation_signer(signed)
            except SignatureError as exc:
                raise SigningRefused(f"observation from {obs.node}: {exc}") from exc
            if signer != obs.node or signer not in signers:
                raise SigningRefused(f"observation claims {obs.node} but is signed by {signer}")
            if signer in seen:
                raise SigningRefused(f"two observations from {signer}")
            seen.add(signer)
            values.append(obs.value)
        if len(values) < self.don.quorum:
            raise SigningRefused(
                f"{len(values)} observations, consensus needs 2f+1 = {self.don.quorum}"
            )
        if not within_band(values, self.don.observation_band_bps):
            raise SigningRefused(
                f"observations spread beyond {self.don.observation_band_bps} bps of their median"
            )
        return values


def observation_age_problem(observed_at: int, now: int, don: DonConfig) -> str | None:
    """Why an observation made at ``observed_at`` is unacceptable at ``now``, or None."""
    age = now - observed_at
    if age > don.max_observation_age:
        return f"stale: observed {age}s ago, max age {don.max_observation_age}s"
    if age < -FUTURE_SKEW:
        return f"observed {-age}s in the future"
    return None


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **extra})


def event(name: str, **fields: Any) -> None:
    """Log one structured event (a JSON object per line in the node's log)."""
    log.info(name, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, node, level, event and the event's fields."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        line = {
            "ts": round(record.created, 3),
            "node": self.node,
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        return json.dumps(line, default=str)


def read_admin_token(path: Path | None) -> str | None:
    """The admin token from its file, or None when admin is disabled or the file is unreadable."""
    if path is None:
        return None
    try:
        token = path.read_text().strip()
    except OSError:
        return None
    return token or None


def _admin_allowed(request: Request, token: str | None) -> str | None:
    """Why an admin request is refused, or None if it may proceed."""
    if token is None:
        return "admin is disabled: the DON config names no admin_token_file"
    host = request.client.host if request.client else ""
    if host not in ("127.0.0.1", "::1"):
        return f"admin is only served to loopback, not {host}"
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        return "wrong or missing admin token (Authorization: Bearer <token from admin_token_file>)"
    return None


class FaultGate:
    """ASGI middleware: down, slow and flaky on the protocol endpoints (admin always answers).

    Plain ASGI rather than ``@app.middleware``: Starlette's BaseHTTPMiddleware
    costs about a millisecond per request, a round's worth on loopback.
    """

    def __init__(self, app: Any, node: OracleNode) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer for a faulty node, or pass the request on."""
        path = scope.get("path", "") if scope["type"] == "http" else "/admin"
        refusal = await self._fault(path)
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    async def _fault(self, path: str) -> JSONResponse | None:
        mode = self.node.fault.mode
        if path.startswith("/admin") or mode == "none":
            return None
        if mode == "down":
            return _error(503, "node is down (fault mode)")
        if not path.startswith(PROTOCOL_PATHS):
            return None
        if mode == "slow":
            await asyncio.sleep(self.node.fault.delay)
        if self.node.injects_error():
            event("injected-error", path=path)
            return _error(500, "injected error (flaky fault mode)")
        return None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _install_admin(app: FastAPI, node: OracleNode) -> None:
    token = read_admin_token(node.don.admin_token_file)

    @app.get("/admin/fault")
    async def get_fault(request: Request) -> Response:
        refused = _admin_allowed(request, token)
        if refused:
            return _error(403, refused)
        return JSONResponse(node.fault.model_dump())

    @app.put("/admin/fault")
    async def put_fault(request: Request, fault: FaultSpec) -> Response:
        refused = _admin_allowed(request, token)
        if refused:
            event("admin-refused", reason=refused)
            return _error(403, refused)
        node.set_fault(fault)
        event("fault-set", **fault.model_dump())
        return JSONResponse(node.fault.model_dump())


def create_app(node: OracleNode) -> FastAPI:
    """Build the node's HTTP API around ``node``."""
    app = FastAPI(title=f"vouch oracle node {node.spec.name}", version="1")
    app.add_middleware(FaultGate, node=node)
    _install_admin(app, node)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        ]
        return _error(422, "malformed request: " + "; ".join(problems), problems=problems)

    @app.exception_handler(SigningRefused)
    async def _refused(_: Request, exc: SigningRefused) -> JSONResponse:
        log.warning("refused", extra={"fields": {"reason": str(exc)}})
        return _error(409, f"refused to sign: {exc}")

    @app.exception_handler(CreError)
    async def _failed(_: Request, exc: CreError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(ValidationError)
    async def _bad_value(_: Request, exc: ValidationError) -> JSONResponse:
        return _error(422, f"malformed request: {exc.error_count()} invalid values")

    @app.get("/health")
    async def health() -> HealthResponse:
        return HealthResponse(
            status="ok",
            node=node.spec.name,
            address=node.spec.address,
            don_id=node.don.don_id,
            config_version=node.don.config_version,
            last_round=node.last_round,
            last_round_at=node.last_round_at,
            rounds=node.rounds,
            fault=node.fault.mode,
        )

    @app.post("/observe")
    async def observe(request: ObserveRequest) -> SignedObservation:
        started = time.perf_counter()
        signed = await node.observe(request)
        obs = signed.observation
        event("observed", round=obs.request_id, value=obs.value, ms=_ms(started))
        return signed

    @app.post("/sign/settlement")
    async def sign(request: SettlementSignRequest) -> SignResponse:
        started = time.perf_counter()
        answer = node.sign_settlement(request)
        event("signed", round=request.request_id, price=answer.price, ms=_ms(started))
        return answer

    return app


def build_source(spec: NodeSpec) -> DataSource:
    """The data source a node spec asks for."""
    source = spec.source
    if source.kind == "http":
        return HttpJsonSource(source.http)
    if source.kind == "evm":
        if source.rpc_url is None:
            raise ConfigError(f"node {spec.name}: an evm source needs rpc_url")
        return EvmReadSource(source.rpc_url, source.evm)
    mock = MockRatesSource if source.kind == "mock-rates" else MockPriceSource
    return mock(source.market_seed, source.node_seed, source.noise_bps)


def _configure_logging(name: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(name))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def serve(don: DonConfig, name: str, private_key: bytes) -> None:
    """Run node ``name`` of ``don`` until interrupted (blocks)."""
    import uvicorn

    spec = don.node(name)
    _configure_logging(name)
    node = OracleNode(don, spec, private_key, build_source(spec))
    event("start", address=spec.address, url=spec.url, fault=spec.fault.mode)
    uvicorn.run(
        create_app(node), host=spec.host, port=spec.port, log_level="warning", access_log=False
    )
