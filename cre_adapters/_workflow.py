"""The settlement workflow: trigger -> observe -> consensus -> report -> forwarder -> log.

Every step lands in the attestation log before the next one starts, so a
crash leaves a log that says exactly how far the execution got.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from vouch.verifier import (
    LogEntry,
    LogStore,
    ReportBody,
    SettlementPayload,
    SignedObservation,
    encode_report,
    execution_id,
    median,
    report_context,
    report_digest,
)

from ._coordinator import Coordinator, Round
from ._delivery import ReportDelivery, jsonable
from ._don import DonConfig
from ._errors import CreError, QuorumNotReached
from ._protocol import ObserveRequest, SettlementSignRequest, SignResponse
from ._rounds import next_attempt, round_id
from ._runner import latencies, workflow_metadata
from .evm import Artifacts, ChainWriter, Deployment

Status = Literal["settled", "refused"]
EventSink = Callable[[str, dict[str, Any]], None]


class SettlementJob(BaseModel):
    """What to attest: a funded trade on the gate, bound to the agent's action hash."""

    trade_id: int
    action_hash: str
    feed: str = "ETH/USD"


class ExecutionRef(BaseModel):
    """Identifies one execution: its id (also the Keystone workflowExecutionId) and sequence."""

    execution_id: str
    sequence: int


class SettlementOutcome(BaseModel):
    """What happened onchain, and where it is in the log."""

    execution_id: str
    status: Status
    price: int
    signers: list[str]
    tx_hash: str
    block_number: int
    gas_used: int
    error: dict[str, Any] | None
    log_seq: int


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _quiet(kind: str, data: dict[str, Any]) -> None:
    """Default event sink: print nothing."""


class SettlementWorkflow:
    """Runs settlement executions against one DON, one chain and one log.

    ``writer`` (sync) holds the submitting key; each submission goes through
    an ``AsyncChainWriter`` for that key (``writer_options``: gas margin,
    receipt timeout, resubmission), reads and event decoding through ``writer``.
    """

    def __init__(
        self,
        don: DonConfig,
        deployment: Deployment,
        artifacts: Artifacts,
        writer: ChainWriter,
        log: LogStore,
        *,
        timeout: float = 5.0,
        on_event: EventSink = _quiet,
        writer_options: dict[str, Any] | None = None,
    ) -> None:
        self.don = don
        self.writer_options = dict(writer_options or {})
        self.deployment = deployment
        self.artifacts = artifacts
        self.writer = writer
        self.log = log
        self.coordinator = Coordinator(don, timeout=timeout)
        self.emit = on_event

    def new_execution(self, job: SettlementJob) -> ExecutionRef:
        """A fresh execution id for ``job`` (log the proposal under it before running)."""
        sequence = time.time_ns() // 1_000_000
        workflow_id = bytes.fromhex(self.deployment.workflow.id[2:])
        exec_id = execution_id(workflow_id, bytes.fromhex(job.action_hash[2:]), sequence)
        return ExecutionRef(execution_id=_hex(exec_id), sequence=sequence)

    def next_attempt(self, execution_id: str) -> int:
        """The number of the next DON round of ``execution_id``: 1 + the highest one logged.

        A caller that counts attempts itself (also those killed before they
        logged anything) passes its own number to ``run``; the round id is new
        either way (``round_id``).
        """
        entries = self.log.by_execution(execution_id)
        return next_attempt((e.kind, e.payload) for e in entries)

    def observe_request(
        self, job: SettlementJob, ref: ExecutionRef, attempt: int
    ) -> ObserveRequest:
        """The observation request of a new round: attempt ``attempt`` of ``ref``, fresh round id."""
        exec_id = bytes.fromhex(ref.execution_id[2:])
        return ObserveRequest(request_id=round_id("x", exec_id, attempt), feed=job.feed)

    async def run(
        self,
        job: SettlementJob,
        execution: ExecutionRef | None = None,
        *,
        attempt: int | None = None,
    ) -> SettlementOutcome:
        """Attest and submit one settlement: attempt ``attempt`` of the execution.

        Every call is a new DON round with its own round id (nodes observe
        afresh, whatever they cached for earlier attempts); ``attempt`` (None:
        ``next_attempt``) is logged in every entry of the round.

        Raises:
            QuorumNotReached: too few nodes observed or signed; nothing was submitted.
            ContractRevert: the forwarder rejected the report; nothing was settled.
        """
        ref = execution or self.new_execution(job)
        exec_id = bytes.fromhex(ref.execution_id[2:])
        attempt = attempt or self.next_attempt(ref.execution_id)
        request = self.observe_request(job, ref, attempt)
        try:
            async with self.coordinator.connected():
                return await self._run(job, exec_id, ref.sequence, request, attempt)
        except CreError as exc:
            payload: dict[str, Any] = {
                "error": type(exc).__name__,
                "detail": str(exc),
                "attempt": attempt,
                "request_id": request.request_id,
            }
            if isinstance(exc, QuorumNotReached):
                payload["stage"] = exc.stage
                payload["causes"] = exc.causes
            self._append(exec_id, "aborted", payload)
            raise

    async def _run(
        self,
        job: SettlementJob,
        exec_id: bytes,
        sequence: int,
        request: ObserveRequest,
        attempt: int,
    ) -> SettlementOutcome:
        self.emit("observing", {"feed": job.feed, "nodes": len(self.don.nodes), "attempt": attempt})
        seen = await self.coordinator.observe_round(request)
        observations = [o.signed for o in seen.observed]
        obs_seq = self._log_observations(exec_id, request, seen, attempt)
        price = median([o.observation.value for o in observations])
        self._append(
            exec_id,
            "consensus",
            {
                "mode": "median",
                "value": price,
                "observations_seq": obs_seq,
                "f": self.don.f,
                "attempt": attempt,
            },
        )
        self.emit("consensus", {"price": price, "observations": len(observations)})
        sign_request, raw, context = self._build(
            job, exec_id, sequence, request, observations, price
        )
        answers = await self.coordinator.sign(sign_request, report_digest(raw, context))
        self._log_report(exec_id, raw, context, answers, attempt)
        self.emit("signed", {"signers": [a.signer for a in answers]})
        return await self._submit(exec_id, raw, context, answers, price)

    def _build(
        self,
        job: SettlementJob,
        exec_id: bytes,
        sequence: int,
        request: ObserveRequest,
        observations: list[SignedObservation],
        price: int,
    ) -> tuple[SettlementSignRequest, bytes, bytes]:
        meta = workflow_metadata(self.deployment.workflow, self.don, exec_id)
        receiver = self.deployment.address("SettlementGate")
        body = ReportBody(
            chain_id=self.deployment.chain_id,
            receiver=receiver,
            timestamp=meta.timestamp,
            action_hash=bytes.fromhex(job.action_hash[2:]),
            payload=SettlementPayload(trade_id=job.trade_id, price=price).encode(),
        )
        sign_request = SettlementSignRequest(
            request_id=request.request_id,
            feed=request.feed,
            observations=observations,
            metadata=meta,
            receiver=receiver,
            action_hash=job.action_hash,
            trade_id=job.trade_id,
            sequence=sequence,
        )
        return sign_request, encode_report(meta, body), report_context(self.don.digest(), sequence)

    async def _submit(
        self, exec_id: bytes, raw: bytes, context: bytes, answers: list[SignResponse], price: int
    ) -> SettlementOutcome:
        delivery = ReportDelivery(
            self.deployment,
            self.artifacts,
            self.writer,
            self.log,
            "SettlementGate",
            delivered_status="settled",
            writer_options=self.writer_options,
            on_event=self.emit,
        )
        signatures = [bytes.fromhex(a.signature[2:]) for a in answers]
        payload, entry = await delivery.submit(exec_id, raw, context, signatures)
        return SettlementOutcome(
            execution_id=_hex(exec_id),
            status=payload["status"],
            price=price,
            signers=[a.signer for a in answers],
            tx_hash=payload["tx_hash"],
            block_number=payload["block_number"],
            gas_used=payload["gas_used"],
            error=payload["error"],
            log_seq=entry.seq,
        )

    def _log_observations(
        self, exec_id: bytes, request: ObserveRequest, seen: Round, attempt: int
    ) -> int:
        payload = {
            "request_id": request.request_id,
            "attempt": attempt,
            "feed": request.feed,
            "observations": [o.signed.model_dump(mode="json") for o in seen.observed],
            **latencies(seen.observed),
            **seen.log_fields(),
            "don": {**self._don_ref(), **self._rules()},
        }
        return int(self._append(exec_id, "observations", payload).seq)

    def _log_report(
        self, exec_id: bytes, raw: bytes, context: bytes, answers: list[SignResponse], attempt: int
    ) -> None:
        payload = {
            "attempt": attempt,
            "absent": [a.to_json() for a in self.coordinator.last_signing],
            "raw": _hex(raw),
            "context": _hex(context),
            "signatures": [a.signature for a in answers],
            "signers": [a.signer for a in answers],
            "receiver": self.deployment.address("SettlementGate"),
            **self._don_ref(),
        }
        self._append(exec_id, "report", payload)

    def _don_ref(self) -> dict[str, Any]:
        return {
            "don_id": self.don.don_id,
            "config_version": self.don.config_version,
            "forwarder": self.don.forwarder,
            "chain_id": self.don.chain_id,
        }

    def _rules(self) -> dict[str, Any]:
        """The DON's rules an observation set was judged by (what evidence is checked against)."""
        return {
            "f": self.don.f,
            "max_observation_age": self.don.max_observation_age,
            "observation_band_bps": self.don.observation_band_bps,
        }

    def _append(self, exec_id: bytes, kind: str, payload: dict[str, Any]) -> LogEntry:
        return self.log.append(exec_id, kind, jsonable(payload))


__all__ = ["ExecutionRef", "SettlementJob", "SettlementOutcome", "SettlementWorkflow"]
