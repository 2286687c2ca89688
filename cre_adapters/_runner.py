"""Run a feed workflow (interval, EVM-log or HTTP trigger; target: the log or FeedConsumer) on a DON.

Each firing of the trigger runs the workflow once: every capability's feed
is observed through the coordinator (2f+1 signed, fresh observations, with
each node's answer latency), aggregated by the capability's mode (median,
identical or mode), the deviation/heartbeat rule applied, and the fields
that report are signed by f+1 nodes in one Keystone report (each node
re-derives every field first). The log gets ``observations``,
``consensus`` (or ``skipped``) per feed, with the rule's thresholds and the
earlier report it compared against (so an audit recomputes the verdict), and
one ``report`` per firing. A ``feeds`` target then delivers the report through
the Forwarder to the deployment's FeedConsumer (``ReportDelivery``) and logs the
``submission``, as a settlement does. An HTTP trigger runs one round per ``POST
/trigger`` (``HttpTriggerServer``). Settlement targets go through
``SettlementWorkflow``; a proposal trigger is the settlement demo.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vouch.verifier import (
    LogStore,
    ReportBody,
    ReportMetadata,
    encode_report,
    keccak,
    report_context,
    report_digest,
    workflow_id,
)

from ._consensus import MODES, ReportTrigger
from ._coordinator import Coordinator, Observed
from ._don import DonConfig, checksum
from ._errors import ConfigError, CreError
from ._protocol import FeedsPayload, FieldObservations, ObserveRequest, ReportSignRequest
from ._spec import Capability, EvmLogTrigger, HttpTrigger, IntervalTrigger, WorkflowSpec
from .evm import WorkflowInfo

if TYPE_CHECKING:
    from ._delivery import ReportDelivery

EventSink = Callable[[str, dict[str, Any]], None]
NOBODY = "0x" + "00" * 20  # a log target's report goes to no contract
REPORT_ID = b"\x00\x03"


def _quiet(kind: str, data: dict[str, Any]) -> None:
    """Default event sink: print nothing."""


class FeedWorkflow:
    """Runs ``spec`` against ``don``, appending every round to ``log``.

    Args:
        spec: a workflow whose target is the log and whose trigger is interval or evm-log.
        don: the DON to ask.
        log: where rounds are recorded.
        rpc_url: the DON's chain, for EVM-log triggers that name none.
        timeout: seconds per node answer, unless the spec's ``consensus.deadline`` says.
        on_event: called with (kind, data) for progress output.
        receiver: the contract the signed reports are for (default: none, the log only).
        owner: the workflow owner named in the report metadata.
        delivery: a ``feeds`` target's way to FeedConsumer; its receiver replaces ``receiver``.
        workflow: the identity the receiver accepts (owner, id, name, report id); reports
            carry it instead of the spec's name (a ``feeds`` target: the manifest's feed_workflow).
        token_file: an HTTP trigger's token file when the spec names none.
    """

    def __init__(
        self,
        spec: WorkflowSpec,
        don: DonConfig,
        log: LogStore,
        *,
        rpc_url: str | None = None,
        timeout: float = 5.0,
        on_event: EventSink = _quiet,
        receiver: str = NOBODY,
        owner: str = NOBODY,
        delivery: ReportDelivery | None = None,
        workflow: WorkflowInfo | None = None,
        token_file: Path | None = None,
    ) -> None:
        _check_target(spec, delivery, workflow)
        self.spec = spec
        self.don = don
        self.log = log
        self.rpc_url = rpc_url
        self.delivery = delivery
        self.receiver = checksum(delivery.receiver if delivery else receiver)
        self.owner = checksum(workflow.owner if workflow else owner)
        self.identity = (
            (bytes.fromhex(workflow.id[2:]), workflow.name, bytes.fromhex(workflow.report_id[2:]))
            if workflow
            else (workflow_id(spec.name), spec.name, REPORT_ID)
        )
        self.token_file = token_file
        self.coordinator = Coordinator(don, timeout=spec.consensus.deadline or timeout)
        self.emit = on_event
        c = spec.consensus
        self.rule = (
            ReportTrigger(deviation_bps=c.deviation_bps or 0, heartbeat=c.heartbeat or 10**9)
            if c.deviation_bps is not None or c.heartbeat is not None
            else None
        )
        self._last: dict[str, tuple[int, int, int]] = {}  # feed -> last reported (value, time, seq)

    async def run(self) -> list[dict[str, Any]]:
        """Wait for each trigger, run a round; return every round's outcome.

        Raises:
            QuorumNotReached: a round could not gather 2f+1 agreeing observations.
            ConsensusFailed: the observations do not meet a capability's mode.
            ConfigError: the trigger cannot be run here.
            CreError: the EVM-log trigger saw no event in time.
        """
        trigger = self.spec.trigger
        async with self.coordinator.connected():
            if isinstance(trigger, IntervalTrigger):
                return await self._every(trigger)
            if isinstance(trigger, EvmLogTrigger):
                return await self._on_logs(trigger)
            if isinstance(trigger, HttpTrigger):
                return await self._on_requests(trigger)
        raise ConfigError("a proposal trigger runs the settlement workflow (`vouch demo`)")

    async def _every(self, trigger: IntervalTrigger) -> list[dict[str, Any]]:
        outcomes = []
        for i in range(trigger.runs):
            if i:
                await asyncio.sleep(trigger.every)
            outcomes.append(await self.round({"kind": "interval", "run": i + 1}))
        return outcomes

    async def _on_logs(self, trigger: EvmLogTrigger) -> list[dict[str, Any]]:
        from web3 import AsyncHTTPProvider, AsyncWeb3

        url = trigger.rpc_url or self.rpc_url
        if url is None:
            raise ConfigError("the evm-log trigger needs rpc_url (or the DON's chain)")
        w3 = AsyncWeb3(AsyncHTTPProvider(url))
        try:
            return await self._watch(w3, trigger)
        finally:
            await w3.provider.disconnect()

    async def _watch(self, w3: Any, trigger: EvmLogTrigger) -> list[dict[str, Any]]:
        address = checksum(trigger.address)
        next_block = await w3.eth.block_number + 1
        outcomes: list[dict[str, Any]] = []
        deadline = time.monotonic() + trigger.timeout
        self.emit("watching", {"address": address, "from_block": next_block})
        while len(outcomes) < trigger.runs:
            if time.monotonic() > deadline:
                raise CreError(
                    f"no event from {address} within {trigger.timeout}s "
                    f"({len(outcomes)} of {trigger.runs} runs done)"
                )
            head = await w3.eth.block_number
            if head >= next_block:
                params: dict[str, Any] = {"address": address, "fromBlock": next_block}
                params["toBlock"] = head
                if trigger.topic:
                    params["topics"] = [trigger.topic]
                for entry in await w3.eth.get_logs(params):
                    if len(outcomes) < trigger.runs:
                        outcomes.append(await self.round(_log_ref(entry)))
                next_block = head + 1
            await asyncio.sleep(trigger.poll)
        return outcomes

    async def _on_requests(self, trigger: HttpTrigger) -> list[dict[str, Any]]:
        from ._http_trigger import FeedTriggerBody, HttpTriggerServer, trigger_token

        path = trigger.token_file or self.token_file
        if path is None:
            raise ConfigError(
                "the http trigger needs a token_file (in the spec or from the caller)"
            )

        async def fire(body: FeedTriggerBody) -> dict[str, Any]:
            return await self.round({"kind": "http", "feeds": body.feeds}, body.feeds)

        server = HttpTriggerServer(trigger, trigger_token(path), FeedTriggerBody, fire, self.emit)
        return await server.serve()

    async def round(
        self, cause: dict[str, Any], feeds: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """One round over every capability (or those of ``feeds``), caused by ``cause`` (logged).

        Every capability is observed and aggregated by its own mode; the fields
        whose deviation/heartbeat rule fires go into one Keystone report that
        f+1 nodes sign after re-deriving each field's outcome themselves. A
        ``feeds`` target then delivers it through the Forwarder to FeedConsumer.

        Raises:
            ConfigError: ``feeds`` names a feed the spec does not observe (nothing ran).
            ContractRevert: the forwarder rejected the report (logged as a submission).
        """
        capabilities = self._capabilities(feeds)
        stamp = time.time_ns()
        exec_id = keccak(f"{self.spec.name}|{stamp}".encode())
        request_id = "w" + exec_id.hex()[:40]
        values: dict[str, Any] = {}
        fields: list[FieldObservations] = []
        for capability in capabilities:
            mode = capability.mode or self.spec.consensus.mode
            field, outcome = await self._observe(exec_id, request_id, capability.feed, mode, cause)
            values[capability.feed] = outcome
            if outcome["reported"]:
                fields.append(field)
        report = await self._report(exec_id, request_id, stamp, fields) if fields else None
        outcome = {
            "execution_id": "0x" + exec_id.hex(),
            "cause": cause,
            "feeds": values,
            "report": report,
        }
        if self.delivery is not None and report is not None:
            outcome["submission"] = await self.delivery.deliver(exec_id, report)
        outcome["status"] = _status(outcome)
        return outcome

    def _capabilities(self, feeds: Sequence[str] | None) -> list[Capability]:
        if feeds is None:
            return list(self.spec.capabilities)
        have = [c.feed for c in self.spec.capabilities]
        unknown = sorted(set(feeds) - set(have))
        if unknown or not feeds:
            raise ConfigError(
                f"workflow {self.spec.name} observes {', '.join(have)}; "
                + (f"not {', '.join(unknown)}" if unknown else "name at least one")
            )
        return [c for c in self.spec.capabilities if c.feed in feeds]

    async def _observe(
        self, exec_id: bytes, request_id: str, feed: str, mode: str, cause: dict[str, Any]
    ) -> tuple[FieldObservations, dict[str, Any]]:
        request = ObserveRequest(request_id=request_id, feed=feed)
        seen = await self.coordinator.observe_round(request, numeric=mode == "median")
        observed = seen.observed
        payload = {
            "request_id": request.request_id,
            "feed": feed,
            "observations": [o.signed.model_dump(mode="json") for o in observed],
            **latencies(observed),
            **seen.log_fields(),
            "cause": cause,
            "don": {
                **self._don_ref(),
                "f": self.don.f,
                "max_observation_age": self.don.max_observation_age,
                "observation_band_bps": self.don.observation_band_bps,
            },
        }
        seq = self.log.append(exec_id, "observations", payload).seq
        value = int(
            MODES[mode]().aggregate([o.signed.observation.value for o in observed], self.don.f)
        )
        now = int(time.time())
        rule = self.rule if mode == "median" else None
        last = self._last.get(feed)
        why = rule.should_report(last[:2] if last else None, value, now) if rule else "always"
        kind = "consensus" if why else "skipped"
        logged = self.log.append(
            exec_id,
            kind,
            {
                "mode": mode,
                "feed": feed,
                "value": value,
                "observations_seq": seq,
                "f": self.don.f,
                "why": why,
                "rule": _rule_record(rule, last, now),
            },
        )
        if why:
            self._last[feed] = (value, now, logged.seq)
        outcome = {"value": value, "reported": bool(why), "why": why}
        self.emit(kind, {"feed": feed, **outcome})
        field = FieldObservations(
            feed=feed, mode=mode, value=value, observations=[o.signed for o in observed]
        )
        return field, outcome

    async def _report(
        self, exec_id: bytes, request_id: str, stamp: int, fields: list[FieldObservations]
    ) -> dict[str, Any]:
        """Have f+1 nodes sign the report of ``fields``; log it; return signers and raw report."""
        wid, name, report_id = self.identity
        meta = ReportMetadata(
            version=1,
            execution_id=exec_id,
            timestamp=int(time.time()),
            don_id=self.don.don_id,
            config_version=self.don.config_version,
            workflow_id=wid,
            workflow_name=name,
            workflow_owner=self.owner,
            report_id=report_id,
        )
        request = ReportSignRequest(
            request_id=request_id,
            fields=fields,
            metadata=meta,
            receiver=self.receiver,
            action_hash="0x" + exec_id.hex(),
            sequence=stamp // 1_000_000,
        )
        body = ReportBody(
            chain_id=self.don.chain_id,
            receiver=self.receiver,
            timestamp=meta.timestamp,
            action_hash=exec_id,
            payload=FeedsPayload(
                feeds=[f.feed for f in fields],
                modes=[f.mode for f in fields],
                values=[f.value for f in fields],
            ).encode(),
        )
        raw = encode_report(meta, body)
        context = report_context(self.don.digest(), request.sequence)
        answers = await self.coordinator.sign(request, report_digest(raw, context))
        report = {
            "raw": "0x" + raw.hex(),
            "context": "0x" + context.hex(),
            "signatures": [a.signature for a in answers],
            "signers": [a.signer for a in answers],
            "receiver": self.receiver,
            **self._don_ref(),
        }
        self.log.append(exec_id, "report", report)
        self.emit("signed", {"feeds": [f.feed for f in fields], "signers": report["signers"]})
        return report

    def _don_ref(self) -> dict[str, Any]:
        return {
            "don_id": self.don.don_id,
            "config_version": self.don.config_version,
            "forwarder": self.don.forwarder,
            "chain_id": self.don.chain_id,
        }


def _check_target(
    spec: WorkflowSpec, delivery: ReportDelivery | None, workflow: WorkflowInfo | None
) -> None:
    if spec.target.kind == "settlement":
        raise ConfigError(
            "FeedWorkflow runs log and feeds targets; settlement goes through a proposal"
        )
    if spec.target.kind == "feeds" and (delivery is None or workflow is None):
        raise ConfigError("a feeds target needs the deployment's FeedConsumer (delivery, workflow)")
    if spec.target.kind == "log" and delivery is not None:
        raise ConfigError('a log target delivers nothing; use [target] kind = "feeds"')


def _status(outcome: dict[str, Any]) -> str:
    """``skipped`` (no field reported), ``signed`` (log target), or the submission's status."""
    if outcome["report"] is None:
        return "skipped"
    submission = outcome.get("submission")
    return str(submission["status"]) if submission else "signed"


def workflow_metadata(workflow: WorkflowInfo, don: DonConfig, exec_id: bytes) -> ReportMetadata:
    """Keystone metadata for one execution of a deployed ``workflow`` by ``don``, stamped now."""
    return ReportMetadata(
        version=1,
        execution_id=exec_id,
        timestamp=int(time.time()),
        don_id=don.don_id,
        config_version=don.config_version,
        workflow_id=bytes.fromhex(workflow.id[2:]),
        workflow_name=workflow.name,
        workflow_owner=workflow.owner,
        report_id=bytes.fromhex(workflow.report_id[2:]),
    )


def latencies(observed: list[Observed]) -> dict[str, dict[str, int]]:
    """Each node's answer latency, by signer address: whole ms and us (the log takes no floats)."""
    return {
        "latency_ms": {o.signed.observation.node: round(o.latency_ms) for o in observed},
        "latency_us": {o.signed.observation.node: round(o.latency_ms * 1000) for o in observed},
    }


def _rule_record(
    rule: ReportTrigger | None, last: tuple[int, int, int] | None, now: int
) -> dict[str, Any] | None:
    """The deviation/heartbeat rule as applied: its thresholds, the report it compared against, when."""
    if rule is None:
        return None
    previous = {"value": last[0], "at": last[1], "seq": last[2]} if last else None
    return {
        "deviation_bps": rule.deviation_bps,
        "heartbeat": rule.heartbeat,
        "previous": previous,
        "at": now,
    }


def _log_ref(entry: Any) -> dict[str, Any]:
    return {
        "kind": "evm-log",
        "block": int(entry["blockNumber"]),
        "tx": "0x" + bytes(entry["transactionHash"]).hex(),
        "log_index": int(entry["logIndex"]),
    }


__all__ = ["FeedWorkflow"]
