"""One oracle node: observes with its own data source, signs only what it re-derives.

Run as its own OS process (``vouch node run --don FILE --node NAME``); the
coordinator talks to it over HTTP.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from fastapi import FastAPI, Request
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

from ._don import DonConfig, NodeSpec
from ._errors import CreError, SigningRefused
from ._protocol import HealthResponse, ObserveRequest, SettlementSignRequest, SignResponse
from ._sources import DataSource, MockPriceSource

MAX_CLOCK_SKEW = 60
log = logging.getLogger("vouch.node")


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
        self.last_round: str | None = None

    async def observe(self, request: ObserveRequest) -> SignedObservation:
        """Fetch the feed and sign the observation."""
        quote = await self._source.fetch(request.feed, int(time.time()))
        observation = Observation(
            request_id=request.request_id,
            feed=request.feed,
            value=quote.value,
            observed_at=quote.observed_at,
            node=self.spec.address,
        )
        self.last_round = request.request_id
        return sign_observation(observation, self._key)

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
        signature = sign_report(digest, self._key)
        self.last_round = request.request_id
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
        signers = set(self.don.signers)
        seen: set[str] = set()
        values: list[int] = []
        for signed in request.observations:
            obs = signed.observation
            if (obs.request_id, obs.feed) != (request.request_id, request.feed):
                raise SigningRefused(f"observation from {obs.node} is for another request or feed")
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
        return values


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **extra})


def create_app(node: OracleNode) -> FastAPI:
    """Build the node's HTTP API around ``node``."""
    app = FastAPI(title=f"vouch oracle node {node.spec.name}", version="1")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        ]
        return _error(422, "malformed request: " + "; ".join(problems), problems=problems)

    @app.exception_handler(SigningRefused)
    async def _refused(_: Request, exc: SigningRefused) -> JSONResponse:
        log.warning(json.dumps({"event": "refused", "node": node.spec.name, "reason": str(exc)}))
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
        )

    @app.post("/observe")
    async def observe(request: ObserveRequest) -> SignedObservation:
        return await node.observe(request)

    @app.post("/sign/settlement")
    async def sign(request: SettlementSignRequest) -> SignResponse:
        return node.sign_settlement(request)

    return app


def build_source(spec: NodeSpec) -> DataSource:
    """The data source a node spec asks for."""
    return MockPriceSource(
        market_seed=spec.source.market_seed,
        node_seed=spec.source.node_seed,
        noise_bps=spec.source.noise_bps,
    )


def _configure_logging(name: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            f'{{"ts":"%(asctime)s","node":"{name}","level":"%(levelname)s","msg":%(message)r}}'
        )
    )
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def serve(don: DonConfig, name: str, private_key: bytes) -> None:
    """Run node ``name`` of ``don`` until interrupted (blocks)."""
    import uvicorn

    spec = don.node(name)
    _configure_logging(name)
    node = OracleNode(don, spec, private_key, build_source(spec))
    log.info(json.dumps({"event": "start", "address": spec.address, "url": spec.url}))
    uvicorn.run(
        create_app(node), host=spec.host, port=spec.port, log_level="warning", access_log=False
    )
