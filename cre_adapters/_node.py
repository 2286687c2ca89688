"""One oracle node's logic: observes with its own data source, signs only what it re-derives.

Its HTTP app (the one router) is ``_node_app``, its log ``_node_log``; a node
process starts from ``python -m vouch.cre_adapters.node`` (or ``vouch node run``).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from vouch.verifier import (
    Observation,
    ReportBody,
    ReportMetadata,
    SettlementPayload,
    SignatureError,
    SignedObservation,
    encode_report,
    median,
    recover_observation_signer,
    report_context,
    report_digest,
)

from ._consensus import MODES, Mode, within_band
from ._don import DonConfig, NodeSpec
from ._errors import ConfigError, ConsensusFailed, SigningRefused
from ._faults import FaultSpec, corrupt, lie
from ._messages import attested_value
from ._node_log import log
from ._protocol import (
    FeedsPayload,
    FieldObservations,
    ObserveRequest,
    ReportSignRequest,
    SettlementSignRequest,
    SignResponse,
)
from ._signer import Signer, address_bytes, observation_signer
from ._sources import (
    DataSource,
    EvmReadSource,
    HttpJsonSource,
    MockPriceSource,
    MockRatesSource,
)
from ._transport import Transport, node_client

MAX_CLOCK_SKEW = 60
CROSS_CHECK_TIMEOUT = 1.0  # seconds a signer waits for an observer's own answer
FUTURE_SKEW = 5
MEMORY = 1024  # rounds whose observation a node remembers (it answers a round once)


class OracleNode:
    """The node's logic, separate from HTTP so it can be tested and reused.

    Args:
        don: the DON this node belongs to.
        spec: this node's own entry in ``don``.
        private_key: the node's signing key (decrypted from its keystore).
        source: where the node reads prices.
        peers: opens the client a cross-check asks the other nodes with
            (default: httpx showing this node's own certificate on a TLS DON).
    """

    def __init__(
        self,
        don: DonConfig,
        spec: NodeSpec,
        private_key: bytes,
        source: DataSource,
        peers: Callable[[], Transport] | None = None,
    ) -> None:
        self.don = don
        self._peers = peers or (lambda: node_client(don, spec))
        self.spec = spec
        self._signer = Signer(private_key)
        self._wrong_signer = Signer(_random_key())
        self._source = source
        self._seen: OrderedDict[str, SignedObservation] = OrderedDict()
        self._askers: dict[str, dict[str, SignedObservation]] = {}  # equivocate: per asker
        # (request, feed, signer) -> (value, observed_at) of every observation this node checked
        # before signing: a second, different signed answer of one node for one round is
        # equivocation (the key already covers the observation's other fields)
        self._checked: OrderedDict[tuple[str, str, bytes], tuple[int, int]] = OrderedDict()
        self._signer_set = frozenset(address_bytes(a) for a in don.signers)
        self._own_address = address_bytes(spec.address)
        self._config_digest = don.digest()
        self._observing = asyncio.Lock()  # one observation per round, even when asked twice at once
        self.last_round: str | None = None
        self.last_round_at: float | None = None
        self.rounds = 0
        self.set_fault(spec.fault)
        from .workflow._node import WorkflowNode  # workflows as code: POST /workflow/*
        from .workflow._secrets import loader

        self.workflows = WorkflowNode(
            don,
            spec,
            self._signer,
            secrets_loader=loader(spec.keystore, private_key),
            allow_file=spec.keystore.parent.parent / "workflows.allow",  # HOME/don/
        )

    def set_fault(self, fault: FaultSpec) -> None:
        """Switch this node's fault mode (``mode="none"``: honest)."""
        self.fault = fault
        self._draws = random.Random(fault.seed)

    def injects_error(self) -> bool:
        """Flaky mode: True when this request should fail."""
        return self.fault.mode == "flaky" and self._draws.random() < self.fault.error_rate

    async def observe(self, request: ObserveRequest, asker: str = "") -> SignedObservation:
        """Fetch the feed and sign the observation; the same answer for every ask of a round.

        An honest node observes a round once and repeats that signed answer; an
        equivocating one gives each asker its own answer (the k-th asker of the
        round a value off by k * lie_bps), the same one every time that asker asks.
        """
        async with self._observing:
            if self.fault.mode == "equivocate":
                return await self._equivocate(request, asker)
            return await self._observe(request)

    async def _equivocate(self, request: ObserveRequest, asker: str) -> SignedObservation:
        key = f"{request.request_id}|{request.feed}|{request.ref or ''}"
        told = self._askers.setdefault(key, {})
        if asker not in told:
            told[asker] = await self._observe(request, len(told))
        while len(self._askers) > MEMORY:
            self._askers.pop(next(iter(self._askers)))
        return told[asker]

    async def _observe(self, request: ObserveRequest, lie_times: int = 0) -> SignedObservation:
        key = f"{request.request_id}|{request.feed}|{request.ref or ''}"
        if self.fault.mode != "equivocate" and key in self._seen:
            return self._seen[key]
        now = int(time.time())
        at = now - self.fault.stale_by if self.fault.mode == "stale" else now
        if request.ref is None:
            quote = await self._source.fetch(request.feed, at)
        else:
            quote = await self._source.fetch_ref(request.feed, at, request.ref)
        # every field is already validated (request, quote, the node's own address)
        observation = Observation.model_construct(
            request_id=request.request_id,
            feed=request.feed,
            value=self._faulty_value(quote.value, lie_times),
            observed_at=quote.observed_at,
            node=self.spec.address,
        )
        signed = self._sign_observation(observation)
        self._remember(key, signed)
        self._mark_round(request.request_id)
        return signed

    def _faulty_value(self, value: int, lie_times: int) -> int:
        if self.fault.mode == "lie":
            return lie(value, self.fault.lie_bps)
        if self.fault.mode == "equivocate":
            return lie(value, lie_times * self.fault.lie_bps)
        return value

    def _sign_observation(self, observation: Observation) -> SignedObservation:
        signed = self._signing().observation(observation)
        if self.fault.mode == "bad-signature":
            return SignedObservation(observation=observation, signature=corrupt(signed.signature))
        return signed

    def _signing(self) -> Signer:
        return self._wrong_signer if self.fault.mode == "wrong-key" else self._signer

    def _sign_digest(self, digest: bytes) -> str:
        signature = self._signing().report(digest)
        if self.fault.mode == "bad-signature":
            signature = corrupt(signature)
        return "0x" + signature.hex()

    def _remember(self, key: str, signed: SignedObservation) -> None:
        self._seen[key] = signed
        while len(self._seen) > MEMORY:
            self._seen.popitem(last=False)

    def _mark_round(self, request_id: str) -> None:
        if request_id != self.last_round:
            self.rounds += 1
        self.last_round = request_id
        self.last_round_at = time.time()

    async def cross_check(
        self, request_id: str, feed: str, observations: list[SignedObservation]
    ) -> None:
        """With ``don.cross_check``: ask every other observer of the set for its answer myself.

        A node trusts neither the coordinator nor the others: an equivocator,
        consistent per asker, gives this signer (a new asker) another signed
        answer than the one in the set, and signing then refuses the set
        (``_check_one_answer``). Observers that do not answer in time prove
        nothing either way and are skipped.
        """
        if not self.don.cross_check:
            return
        peers = {node.address: node for node in self.don.nodes}
        asked = [
            peers[o.observation.node]
            for o in observations
            if o.observation.node != self.spec.address and o.observation.node in peers
        ]
        body = ObserveRequest(request_id=request_id, feed=feed).model_dump_json().encode()
        async with self._peers() as client:
            answers = await asyncio.gather(
                *(client.post(peer.url + "/observe", body, CROSS_CHECK_TIMEOUT) for peer in asked),
                return_exceptions=True,
            )
        for peer, answer in zip(asked, answers, strict=True):
            if isinstance(answer, BaseException) or answer[0] != 200:
                continue
            try:
                signed = SignedObservation.model_validate_json(answer[1])
                signer = observation_signer(signed)
            except (ValueError, SignatureError):
                continue
            obs = signed.observation
            if signer == address_bytes(peer.address) and (obs.request_id, obs.feed) == (
                request_id,
                feed,
            ):
                self._check_one_answer((request_id, feed, signer), signed)

    def sign_settlement(self, request: SettlementSignRequest) -> SignResponse:
        """Re-derive the report from the signed observations and sign it.

        Raises:
            SigningRefused: if anything in the request is not what this node derives itself.
        """
        meta = request.metadata
        self._check_metadata(meta.don_id, meta.config_version, meta.timestamp)
        values = self._verified_values(request.request_id, request.feed, request.observations)
        self._check_band(request.feed, values)
        price = median(values)
        payload = SettlementPayload(trade_id=request.trade_id, price=price).encode()
        digest = self._digest(
            meta, request.receiver, request.action_hash, payload, request.sequence
        )
        self._mark_round(request.request_id)
        return SignResponse(
            node=self.spec.name,
            signer=self.spec.address,
            signature=self._sign_digest(digest),
            digest="0x" + digest.hex(),
            price=price,
        )

    def sign_report(self, request: ReportSignRequest) -> SignResponse:
        """Re-derive every field's outcome with its own mode, then sign the report of them all.

        Raises:
            SigningRefused: a field's observations fail a check, its mode's rule
                is not met, or its outcome differs from the one claimed (the mode
                and both values are named).
        """
        meta = request.metadata
        self._check_metadata(meta.don_id, meta.config_version, meta.timestamp)
        values = [self._derive(request.request_id, field) for field in request.fields]
        if request.payload is None:
            payload = FeedsPayload(
                feeds=[f.feed for f in request.fields],
                modes=[f.mode for f in request.fields],
                values=values,
            ).encode()
        else:
            payload = self._attested(request, values)
        try:
            context_digest = self.don.digest(request.chain_id)
        except ConfigError as exc:
            raise SigningRefused(str(exc)) from None
        digest = self._digest(
            meta,
            request.receiver,
            request.action_hash,
            payload,
            request.sequence,
            request.chain_id or self.don.chain_id,
            context_digest,
        )
        self._mark_round(request.request_id)
        return SignResponse(
            node=self.spec.name,
            signer=self.spec.address,
            signature=self._sign_digest(digest),
            digest="0x" + digest.hex(),
            values=values,
        )

    def _derive(self, request_id: str, field: FieldObservations) -> int:
        """The outcome of one field, as this node computes it from the signed observations."""
        values = self._verified_values(request_id, field.feed, field.observations)
        if field.mode == "median":
            self._check_band(field.feed, values)
        aggregator = Mode(field.min_count) if field.mode == "mode" else MODES[field.mode]()
        try:
            outcome = int(aggregator.aggregate(values, self.don.f))
        except ConsensusFailed as exc:
            raise SigningRefused(f"{field.feed}: {exc}") from None
        if outcome != field.value:
            raise SigningRefused(
                f"{field.feed}: {field.mode} of the signed observations is {outcome}, "
                f"the request claims {field.value}"
            )
        return outcome

    def _attested(self, request: ReportSignRequest, values: list[int]) -> bytes:
        """The attested payload, if the DON agreed (identically) on its hash; else refuse."""
        assert request.payload is not None
        payload = bytes.fromhex(request.payload[2:])
        modes = [f.mode for f in request.fields]
        if modes != ["identical"]:
            raise SigningRefused(f"an attested payload needs one identical field, not {modes}")
        if attested_value(payload) != values[0]:
            raise SigningRefused(
                f"{request.fields[0].feed}: the payload hashes to {attested_value(payload)}, "
                f"the identical observations agree on {values[0]}"
            )
        return payload

    def _digest(
        self,
        meta: ReportMetadata,
        receiver: str,
        action_hash: str,
        payload: bytes,
        sequence: int,
        chain_id: int | None = None,
        context_digest: bytes | None = None,
    ) -> bytes:
        body = ReportBody(
            chain_id=chain_id or self.don.chain_id,
            receiver=receiver,
            timestamp=meta.timestamp,
            action_hash=bytes.fromhex(action_hash[2:]),
            payload=payload,
        )
        context = report_context(context_digest or self._config_digest, sequence)
        return report_digest(encode_report(meta, body), context)

    def _check_metadata(self, don_id: int, config_version: int, timestamp: int) -> None:
        if (don_id, config_version) != (self.don.don_id, self.don.config_version):
            raise SigningRefused(
                f"report names DON {don_id} v{config_version}, this node serves "
                f"DON {self.don.don_id} v{self.don.config_version}"
            )
        skew = abs(int(time.time()) - timestamp)
        if skew > MAX_CLOCK_SKEW:
            raise SigningRefused(f"report timestamp {timestamp} is {skew}s from this node's clock")

    def _verified_values(
        self, request_id: str, feed: str, observations: list[SignedObservation]
    ) -> list[int]:
        """The observed values, after every check the coordinator made, made again."""
        seen: set[bytes] = set()
        values: list[int] = []
        now = int(time.time())
        for signed in observations:
            obs = signed.observation
            if (obs.request_id, obs.feed) != (request_id, feed):
                raise SigningRefused(f"observation from {obs.node} is for another request or feed")
            age_problem = observation_age_problem(obs.observed_at, now, self.don)
            if age_problem:
                raise SigningRefused(f"observation from {obs.node}: {age_problem}")
            try:
                signer = self._own_address if self._is_mine(signed) else observation_signer(signed)
            except SignatureError as exc:
                raise SigningRefused(f"observation from {obs.node}: {exc}") from exc
            if signer != address_bytes(obs.node) or signer not in self._signer_set:
                by = recover_observation_signer(signed)
                raise SigningRefused(f"observation claims {obs.node} but is signed by {by}")
            if signer in seen:
                raise SigningRefused(f"two observations from {obs.node}")
            seen.add(signer)
            self._check_one_answer((request_id, feed, signer), signed)
            values.append(obs.value)
        if len(values) < self.don.quorum:
            raise SigningRefused(
                f"{feed}: {len(values)} observations, consensus needs 2f+1 = {self.don.quorum}"
            )
        return values

    def _is_mine(self, signed: SignedObservation) -> bool:
        """True when ``signed`` is, byte for byte, what this (honest) node signed for that round.

        A signer's own observation is in every set it is asked to sign: comparing
        it with the remembered one spares a signature recovery of 2f+1.
        """
        obs = signed.observation
        if self.fault.mode != "none" or obs.node != self.spec.address:
            return False
        mine = self._seen.get(f"{obs.request_id}|{obs.feed}|")
        return (
            mine is not None
            and mine.signature == signed.signature
            and mine.observation == signed.observation
        )

    def _check_one_answer(self, key: tuple[str, str, bytes], signed: SignedObservation) -> None:
        """Refuse a node's second, different signed observation of one round (equivocation).

        Each signed observation is evidence: two that one key signed for one
        request and feed prove its node told two askers two things. The second
        is logged whole (with what the first said), and no set containing it
        is signed.
        """
        obs = signed.observation
        said = (obs.value, obs.observed_at)
        known = self._checked.setdefault(key, said)
        if known == said:
            self._checked.move_to_end(key)
            while len(self._checked) > MEMORY * 8:
                self._checked.popitem(last=False)
            return
        log.warning(
            "equivocation",
            extra={
                "fields": {
                    "round": key[0],
                    "feed": key[1],
                    "equivocator": obs.node,
                    "value": obs.value,
                    "signature": "0x" + bytes(signed.signature).hex(),
                    "earlier": {"value": known[0], "observed_at": known[1]},
                }
            },
        )
        raise SigningRefused(
            f"{obs.node} equivocated: it signed another observation for round {key[0]} "
            f"({key[1]}): value {known[0]} observed at {known[1]}, now {obs.value} at "
            f"{obs.observed_at}"
        )

    def _check_band(self, feed: str, values: list[int]) -> None:
        if not within_band(values, self.don.observation_band_bps):
            raise SigningRefused(
                f"{feed}: observations spread beyond {self.don.observation_band_bps} bps "
                "of their median"
            )


def observation_age_problem(observed_at: int, now: int, don: DonConfig) -> str | None:
    """Why an observation made at ``observed_at`` is unacceptable at ``now``, or None."""
    age = now - observed_at
    if age > don.max_observation_age:
        return f"stale: observed {age}s ago, max age {don.max_observation_age}s"
    if age < -FUTURE_SKEW:
        return f"observed {-age}s in the future"
    return None


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


_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _random_key() -> bytes:
    """A fresh secp256k1 private key (the wrong-signer fault's), without eth-account."""
    while True:
        key = secrets.token_bytes(32)
        if 0 < int.from_bytes(key, "big") < _SECP256K1_N:
            return key
