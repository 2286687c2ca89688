"""Deliver a signed report through the Forwarder to a receiver contract and log the submission.

The submission entry has the shape of a settlement's (tx hash, block, gas,
status, receipt status, forwarder, receiver, decoded refusal), so ``vouch
audit`` checks it the same way: the receipt, the report the transaction
carried, and the forwarder's ``ReportProcessed`` result against ``status``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_abi import encode as abi_encode
from eth_typing import HexStr
from eth_utils import to_checksum_address
from web3.logs import DISCARD
from web3.types import TxParams

from vouch.verifier import LogEntry, LogStore, keccak

from ._errors import ContractRevert
from .evm import Artifacts, AsyncChainWriter, ChainWriter, Deployment, contract

EventSink = Callable[[str, dict[str, Any]], None]


def _quiet(kind: str, data: dict[str, Any]) -> None:
    """Default event sink: print nothing."""


class ReportDelivery:
    """Sends reports to ``receiver`` (a contract of ``deployment``) through its Forwarder.

    ``writer`` (sync) holds the submitting key; each submission goes through an
    ``AsyncChainWriter`` for it on the caller's event loop (``writer_options``:
    gas margin, receipt timeout, resubmission), all of them sharing the key's
    process-wide ``NonceBook``; reads and event decoding go through ``writer``.
    """

    def __init__(
        self,
        deployment: Deployment,
        artifacts: Artifacts,
        writer: ChainWriter,
        log: LogStore,
        receiver: str = "FeedConsumer",
        *,
        delivered_status: str = "delivered",
        writer_options: dict[str, Any] | None = None,
        on_event: EventSink = _quiet,
    ) -> None:
        self.deployment = deployment
        self.artifacts = artifacts
        self.writer = writer
        self.log = log
        self.name = receiver
        self.receiver = to_checksum_address(deployment.address(receiver))
        self.forwarder = to_checksum_address(deployment.address("Forwarder"))
        self.writer_options = dict(writer_options or {})
        self.delivered_status = delivered_status
        self.emit = on_event

    async def deliver(self, exec_id: bytes, report: dict[str, Any]) -> dict[str, Any]:
        """Submit the logged ``report`` of ``exec_id``; log and return the submission.

        ``status`` is ``delivered`` or ``refused`` (the receiver reverted; the
        forwarder records it, ``error`` holds the receiver's decoded custom error).

        Raises:
            ContractRevert: the forwarder rejected the report (logged as ``rejected``).
        """
        signatures = [bytes.fromhex(s[2:]) for s in report["signatures"]]
        raw, context = bytes.fromhex(report["raw"][2:]), bytes.fromhex(report["context"][2:])
        payload, _ = await self.submit(exec_id, raw, context, signatures)
        return payload

    async def submit(
        self, exec_id: bytes, raw: bytes, context: bytes, signatures: list[bytes]
    ) -> tuple[dict[str, Any], LogEntry]:
        """Send one report; log the submission (``rejected`` before raising) and return it.

        Raises:
            ContractRevert: the forwarder rejected the report.
        """
        self.emit("submitting", {"forwarder": self.forwarder, "receiver": self.receiver})
        try:
            receipt = await self._send(raw, context, signatures)
        except ContractRevert as exc:
            rejected = {"status": "rejected", "tx_hash": None, "error": _error(exc)}
            self.log.append(exec_id, "submission", rejected)
            raise
        payload = self.submission(receipt, raw, self.delivered(receipt))
        entry = self.log.append(exec_id, "submission", payload)
        self.emit(payload["status"], payload)
        return payload, entry

    def submission(self, receipt: Any, raw: bytes, delivered: bool) -> dict[str, Any]:
        """The submission entry of a mined ``Forwarder.report`` transaction that carried ``raw``."""
        block = int(receipt["blockNumber"])
        return {
            "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(),
            "block_number": block,
            "status": self.delivered_status if delivered else "refused",
            "receipt_status": int(receipt["status"]),
            "gas_used": int(receipt["gasUsed"]),
            "forwarder": self.forwarder,
            "receiver": self.receiver,
            "error": None if delivered else self.refusal(raw, block),
        }

    async def _send(self, raw: bytes, context: bytes, signatures: list[bytes]) -> Any:
        writer = self.writer.async_writer(**self.writer_options)
        try:
            forwarder = writer.w3.eth.contract(
                address=self.forwarder, abi=self.artifacts.get("Forwarder").abi
            )
            call = forwarder.functions.report(self.receiver, raw, context, signatures)
            return await writer.transact(call, gas=await self._gas(writer, call, raw))
        finally:
            await writer.w3.provider.disconnect()

    async def _gas(self, writer: AsyncChainWriter, call: Any, raw: bytes) -> int | None:
        """Gas for Forwarder.report that leaves the receiver what it needs.

        The forwarder swallows receiver failures (as Keystone does), so its own
        estimate starves the receiver; estimate the receiver's call too and add it.
        """
        try:
            receiver_gas = await writer.w3.eth.estimate_gas(
                {"from": self.forwarder, "to": self.receiver, "data": on_report_calldata(raw)}
            )
        except Exception:  # noqa: BLE001 - it will refuse; the forwarder records why
            return None
        try:
            forwarder_gas = await call.estimate_gas({"from": writer.address})
        except Exception:  # noqa: BLE001 - the writer decodes the revert itself
            return None
        return int((forwarder_gas + receiver_gas * 64 // 63) * 1.25)

    def delivered(self, receipt: Any) -> bool:
        """Whether the forwarder's ``ReportProcessed`` in ``receipt`` says the receiver took it."""
        fwd = contract(self.writer.w3, self.artifacts, "Forwarder", self.forwarder)
        events = fwd.events.ReportProcessed().process_receipt(receipt, errors=DISCARD)
        return bool(events) and bool(events[0]["args"]["result"])

    def refusal(self, raw: bytes, block: int) -> dict[str, Any]:
        """Why the receiver refused: replay its onReport as the forwarder, decode the error."""
        tx: TxParams = {
            "from": to_checksum_address(self.forwarder),
            "to": to_checksum_address(self.receiver),
            "data": on_report_calldata(raw),
        }
        try:
            self.writer.w3.eth.call(tx, block_identifier=block - 1)
        except Exception as exc:  # noqa: BLE001 - any revert is decoded below
            data = getattr(exc, "data", "")
            return _error(self.refusal_decoder().decode(data if isinstance(data, str) else ""))
        return {"name": "ReceiverFailed", "args": {"reason": "out of gas or reverted without data"}}

    def refusal_decoder(self) -> Any:
        """What decodes a receiver's revert: the writer's decoder (vouch's contracts' errors)."""
        return self.writer.decoder


def on_report_calldata(raw: bytes) -> HexStr:
    """``onReport(metadata, body)`` exactly as vouch's Forwarder calls it for ``raw``.

    The ABI-encoded arguments, then one word: the config id ((donId << 32) |
    configVersion, metadata bytes 37..45) of the config that verified the report.
    A receiver pinned to a DON (ReceiverBase) refuses a call without it, so a
    simulation of the receiver's call must carry it too.
    """
    selector = keccak(b"onReport(bytes,bytes)")[:4]
    args = abi_encode(["bytes", "bytes"], [raw[45:109], raw[109:]])
    return HexStr("0x" + (selector + args + bytes(24) + raw[37:45]).hex())


def _error(exc: ContractRevert) -> dict[str, Any]:
    return {"name": exc.name, "args": jsonable(exc.args_)}


def jsonable(value: Any) -> Any:
    """Decoded chain values (bytes, tuples) as canonical-JSON friendly values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


__all__ = ["ReportDelivery"]
