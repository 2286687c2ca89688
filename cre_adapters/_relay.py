"""Cross-chain relay: an EVM-log trigger on chain A drives the DON to attest and deliver on chain B.

Each ``MessageSent`` event of gateway A addressed to chain B (its first topic
is the destination chain; messages for other chains are not this relay's)
fires the workflow once: every node
reads that event from chain A itself (its ``message`` feed, by tx hash and
log index) and observes the hash of the ``Message`` it encodes; identical
consensus over 2f+1 signed observations fixes the hash; f+1 nodes sign a
Keystone report for chain B whose payload is the message (each refuses
bytes that do not hash to the agreed value); the report goes through chain
B's forwarder to gateway B, which executes the message once, in order.
Every step is in the attestation log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from eth_utils import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.logs import DISCARD

from vouch.verifier import (
    LogStore,
    ReportBody,
    encode_report,
    execution_id,
    keccak,
    report_context,
    report_digest,
)

from ._consensus import Identical
from ._coordinator import Coordinator
from ._don import DonConfig
from ._errors import ConsensusFailed, CreError
from ._messages import (
    MESSAGE_SENT,
    attested_value,
    dest_chain,
    encode_message,
    message_from_log,
    message_nonce,
)
from ._protocol import FieldObservations, ObserveRequest, ReportSignRequest, SignResponse
from ._runner import latencies, workflow_metadata
from .evm import Artifacts, ChainWriter, WorkflowInfo

EventSink = Callable[[str, dict[str, Any]], None]


def _quiet(kind: str, data: dict[str, Any]) -> None:
    """Default event sink: print nothing."""


class MessageRelay:
    """Relays gateway A's messages to gateway B through the DON.

    Args:
        don: the DON; its ``targets`` must name chain B's forwarder, and its
            nodes' sources a ``message`` EVM query on gateway A under ``feed``.
        source_rpc: chain A's RPC URL (the relay watches it for events).
        source_gateway: gateway A's address.
        feed: the nodes' ``message`` feed name for gateway A.
        dest_writer: submits on chain B (through an ``AsyncChainWriter``).
        dest_forwarder: chain B's forwarder.
        dest_gateway: gateway B, the report's receiver.
        workflow: the workflow identity gateway B accepts.
        artifacts: compiled contracts (Forwarder, CrossChainGateway ABIs).
        log: where every step is recorded.
    """

    def __init__(
        self,
        don: DonConfig,
        *,
        source_rpc: str,
        source_gateway: str,
        feed: str,
        dest_writer: ChainWriter,
        dest_forwarder: str,
        dest_gateway: str,
        workflow: WorkflowInfo,
        artifacts: Artifacts,
        log: LogStore,
        timeout: float = 5.0,
        poll: float = 0.2,
        on_event: EventSink = _quiet,
    ) -> None:
        self.don = don
        self.source_rpc = source_rpc
        self.source_gateway = to_checksum_address(source_gateway)
        self.feed = feed
        self.dest_writer = dest_writer
        self.dest_forwarder = to_checksum_address(dest_forwarder)
        self.dest_gateway = to_checksum_address(dest_gateway)
        self.workflow = workflow
        self.artifacts = artifacts
        self.log = log
        self.poll = poll
        self.coordinator = Coordinator(don, timeout=timeout)
        self.emit = on_event

    async def run(self, max_firings: int, wait: float) -> list[dict[str, Any]]:
        """Relay the next ``max_firings`` messages, waiting at most ``wait`` seconds in all.

        Raises:
            CreError: fewer messages arrived in time (how many is said).
            QuorumNotReached, ConsensusFailed: a message could not be attested.
            ContractRevert: the forwarder refused the report.
        """
        w3 = AsyncWeb3(AsyncHTTPProvider(self.source_rpc))
        try:
            async with self.coordinator.connected():
                return await self._watch(w3, max_firings, time.monotonic() + wait, wait)
        finally:
            await w3.provider.disconnect()

    async def _watch(
        self, w3: Any, max_firings: int, deadline: float, wait: float
    ) -> list[dict[str, Any]]:
        chain_id = await w3.eth.chain_id
        next_block = await w3.eth.block_number + 1
        done: list[dict[str, Any]] = []
        self.emit("watching", {"gateway": self.source_gateway, "from_block": next_block})
        while len(done) < max_firings:
            if time.monotonic() > deadline:
                raise CreError(
                    f"no MessageSent from {self.source_gateway} within {wait}s "
                    f"({len(done)} of {max_firings} relayed)"
                )
            head = await w3.eth.block_number
            if head >= next_block:
                dest = self.dest_writer.chain_id.to_bytes(32, "big")
                params = {
                    "address": self.source_gateway,
                    "fromBlock": next_block,
                    "toBlock": head,
                    "topics": ["0x" + MESSAGE_SENT.hex(), "0x" + dest.hex()],
                }
                for entry in await w3.eth.get_logs(params):
                    if len(done) < max_firings:
                        done.append(await self.relay(chain_id, entry))
                next_block = head + 1
            await asyncio.sleep(self.poll)
        return done

    async def relay(self, source_chain: int, entry: Any) -> dict[str, Any]:
        """Attest one MessageSent log entry and deliver it on chain B; the outcome.

        Raises:
            CreError: the message is addressed to another chain than B.
        """
        message = message_from_log(source_chain, entry)
        if dest_chain(message) != self.dest_writer.chain_id:
            raise CreError(
                f"the message is for chain {dest_chain(message)}, this relay delivers to chain "
                f"{self.dest_writer.chain_id}: relay it with that chain's relay"
            )
        payload = encode_message(message)
        ref = f"0x{bytes(entry['transactionHash']).hex()}:{int(entry['logIndex'])}"
        sequence = time.time_ns() // 1_000_000
        exec_id = execution_id(bytes.fromhex(self.workflow.id[2:]), keccak(payload), sequence)
        request = ObserveRequest(request_id="m" + exec_id.hex()[:40], feed=self.feed, ref=ref)
        observed = await self.coordinator.observe_timed(request, numeric=False)
        obs_seq = self.log.append(
            exec_id,
            "observations",
            {
                "request_id": request.request_id,
                "feed": self.feed,
                "ref": ref,
                "observations": [o.signed.model_dump(mode="json") for o in observed],
                **latencies(observed),
                "don": self._don_ref(),
            },
        ).seq
        value = self._agreed(observed, payload)
        self.log.append(
            exec_id,
            "consensus",
            {"mode": "identical", "value": value, "observations_seq": obs_seq, "f": self.don.f},
        )
        field = FieldObservations(
            feed=self.feed, mode="identical", value=value, observations=[o.signed for o in observed]
        )
        raw, context, answers = await self._sign(exec_id, request, field, payload, sequence)
        outcome = await self._deliver(exec_id, raw, context, answers)
        self.emit("relayed", {"ref": ref, **outcome})
        return {"ref": ref, "nonce": message_nonce(message), **outcome}

    def _agreed(self, observed: list[Any], payload: bytes) -> int:
        values = [o.signed.observation.value for o in observed]
        value = int(Identical().aggregate(values, self.don.f))
        if value != attested_value(payload):
            raise ConsensusFailed(
                "identical",
                f"the nodes attest {value}, the event read by the relay hashes to "
                f"{attested_value(payload)}",
            )
        return value

    async def _sign(
        self,
        exec_id: bytes,
        request: ObserveRequest,
        field: FieldObservations,
        payload: bytes,
        sequence: int,
    ) -> tuple[bytes, bytes, list[SignResponse]]:
        chain = self.dest_writer.chain_id
        meta = workflow_metadata(self.workflow, self.don, exec_id)
        body = ReportBody(
            chain_id=chain,
            receiver=self.dest_gateway,
            timestamp=meta.timestamp,
            action_hash=keccak(payload),
            payload=payload,
        )
        sign_request = ReportSignRequest(
            request_id=request.request_id,
            fields=[field],
            metadata=meta,
            receiver=self.dest_gateway,
            action_hash="0x" + keccak(payload).hex(),
            sequence=sequence,
            chain_id=chain,
            payload="0x" + payload.hex(),
        )
        raw = encode_report(meta, body)
        context = report_context(self.don.digest(chain), sequence)
        answers = await self.coordinator.sign(sign_request, report_digest(raw, context))
        self.log.append(
            exec_id,
            "report",
            {
                "raw": "0x" + raw.hex(),
                "context": "0x" + context.hex(),
                "signatures": [a.signature for a in answers],
                "signers": [a.signer for a in answers],
                "receiver": self.dest_gateway,
                "don_id": self.don.don_id,
                "config_version": self.don.config_version,
                "forwarder": self.dest_forwarder,
                "chain_id": chain,
            },
        )
        return raw, context, answers

    async def _deliver(
        self, exec_id: bytes, raw: bytes, context: bytes, answers: list[SignResponse]
    ) -> dict[str, Any]:
        writer = self.dest_writer.async_writer()
        try:
            forwarder = writer.w3.eth.contract(
                address=self.dest_forwarder, abi=self.artifacts.get("Forwarder").abi
            )
            gateway = writer.w3.eth.contract(
                address=self.dest_gateway, abi=self.artifacts.get("CrossChainGateway").abi
            )
            sigs = [bytes.fromhex(a.signature[2:]) for a in answers]
            call = forwarder.functions.report(self.dest_gateway, raw, context, sigs)
            gas = await self._gas(writer, gateway, call, raw)
            receipt = await writer.transact(call, gas=gas)
            processed = forwarder.events.ReportProcessed().process_receipt(receipt, errors=DISCARD)
            failed = gateway.events.MessageFailed().process_receipt(receipt, errors=DISCARD)
        finally:
            await writer.w3.provider.disconnect()
        delivered = bool(processed) and bool(processed[0]["args"]["result"])
        outcome = {
            "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(),
            "block_number": int(receipt["blockNumber"]),
            "status": "delivered" if delivered else "refused",
            # the gateway took the report; did the receiver take the message (else re-executable)?
            "message": ("failed" if failed else "executed") if delivered else None,
            "gas_used": int(receipt["gasUsed"]),
        }
        self.log.append(exec_id, "submission", {**outcome, "forwarder": self.dest_forwarder})
        return outcome

    async def _gas(self, writer: Any, gateway: Any, call: Any, raw: bytes) -> int:
        """Gas for Forwarder.report from a simulation that fails when the delivery would.

        The forwarder swallows a receiver's failure, so its own estimate would
        starve the gateway. The gateway's onReport is simulated as the forwarder
        calls it (the arguments, then the config word): it reverts, rather than
        recording the message failed, when it has less gas than the receiver's
        gas limit needs, so its estimate is what the delivery takes. The two add
        up, with the 1/64 the forwarder's call keeps back and a margin.
        """
        data = gateway.encode_abi("onReport", args=[raw[45:109], raw[109:]])
        data = bytes.fromhex(data[2:]) + bytes(24) + raw[37:45]  # the config word
        receiver_gas = await writer.w3.eth.estimate_gas(
            {"from": self.dest_forwarder, "to": self.dest_gateway, "data": "0x" + data.hex()}
        )
        forwarder_gas = await call.estimate_gas({"from": writer.address})
        return int((forwarder_gas + receiver_gas * 64 // 63) * 1.25)

    def _don_ref(self) -> dict[str, Any]:
        return {
            "don_id": self.don.don_id,
            "config_version": self.don.config_version,
            "forwarder": self.dest_forwarder,
            "chain_id": self.dest_writer.chain_id,
        }


__all__ = ["MessageRelay"]
