"""Run a feed workflow (interval or EVM-log trigger, target: the attestation log) on a DON.

Each run observes every capability's feed through the coordinator (2f+1
signed, fresh, mutually consistent observations), takes the median, applies
the deviation/heartbeat rule and appends ``observations`` and ``consensus``
(or ``skipped``) to the log. Settlement targets go through
``SettlementWorkflow``; a proposal trigger is the settlement demo.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from verifier import AttestationLog, keccak

from ._consensus import MODES, ReportTrigger
from ._coordinator import Coordinator
from ._don import DonConfig, checksum
from ._errors import ConfigError, CreError
from ._protocol import ObserveRequest
from ._spec import EvmLogTrigger, IntervalTrigger, WorkflowSpec

EventSink = Callable[[str, dict[str, Any]], None]


def _quiet(kind: str, data: dict[str, Any]) -> None:
    """Default event sink: print nothing."""


class FeedWorkflow:
    """Runs ``spec`` against ``don``, appending every round to ``log``.

    Args:
        spec: a workflow whose target is the log and whose trigger is interval or evm-log.
        don: the DON to ask.
        log: where rounds are recorded.
        rpc_url: the DON's chain, for EVM-log triggers that name none.
        timeout: seconds per node answer.
        on_event: called with (kind, data) for progress output.
    """

    def __init__(
        self,
        spec: WorkflowSpec,
        don: DonConfig,
        log: AttestationLog,
        *,
        rpc_url: str | None = None,
        timeout: float = 5.0,
        on_event: EventSink = _quiet,
    ) -> None:
        if spec.target.kind != "log":
            raise ConfigError("FeedWorkflow runs log targets; settlement goes through a proposal")
        self.spec = spec
        self.don = don
        self.log = log
        self.rpc_url = rpc_url
        self.coordinator = Coordinator(don, timeout=timeout)
        self.emit = on_event
        c = spec.consensus
        self.rule = (
            ReportTrigger(deviation_bps=c.deviation_bps or 0, heartbeat=c.heartbeat or 10**9)
            if c.deviation_bps is not None or c.heartbeat is not None
            else None
        )
        self._last: dict[str, tuple[int, int]] = {}

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

    async def round(self, cause: dict[str, Any]) -> dict[str, Any]:
        """One round over every capability, caused by ``cause`` (logged with it)."""
        stamp = time.time_ns()
        exec_id = keccak(f"{self.spec.name}|{stamp}".encode())
        values: dict[str, Any] = {}
        for capability in self.spec.capabilities:
            mode = capability.mode or self.spec.consensus.mode
            values[capability.feed] = await self._observe(exec_id, capability.feed, mode, cause)
        return {"execution_id": "0x" + exec_id.hex(), "cause": cause, "feeds": values}

    async def _observe(
        self, exec_id: bytes, feed: str, mode: str, cause: dict[str, Any]
    ) -> dict[str, Any]:
        request = ObserveRequest(request_id="w" + exec_id.hex()[:40], feed=feed)
        observations = await self.coordinator.observe(request, numeric=mode == "median")
        payload = {
            "request_id": request.request_id,
            "feed": feed,
            "observations": [o.model_dump(mode="json") for o in observations],
            "cause": cause,
        }
        seq = self.log.append(exec_id, "observations", payload).seq
        value = int(
            MODES[mode]().aggregate([o.observation.value for o in observations], self.don.f)
        )
        now = int(time.time())
        rule = self.rule if mode == "median" else None
        why = rule.should_report(self._last.get(feed), value, now) if rule else "always"
        kind = "consensus" if why else "skipped"
        self.log.append(
            exec_id,
            kind,
            {
                "mode": "median",
                "value": value,
                "observations_seq": seq,
                "f": self.don.f,
                "why": why,
            },
        )
        if why:
            self._last[feed] = (value, now)
        outcome = {"value": value, "reported": bool(why), "why": why}
        self.emit(kind, {"feed": feed, **outcome})
        return outcome


def _log_ref(entry: Any) -> dict[str, Any]:
    return {
        "kind": "evm-log",
        "block": int(entry["blockNumber"]),
        "tx": "0x" + bytes(entry["transactionHash"]).hex(),
        "log_index": int(entry["logIndex"]),
    }


__all__ = ["FeedWorkflow"]
