"""Reading the chain: what the audit asks of it (ChainReader), and a web3 implementation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_typing import ChecksumAddress, HexAddress, HexStr
from web3 import Web3
from web3.exceptions import Web3Exception, Web3RPCError

from .._hitl import (
    APPROVER_ROLE,
    MESSAGE_EXECUTED,
    MESSAGE_FAILED,
    TRADE_APPROVED,
    TRADE_REFUNDED,
    TRADE_SETTLED,
)
from .._types import to_checksum
from ._types import (
    _APPROVAL_DIGEST,
    _HAS_ROLE,
    ANCHORED,
    APPROVAL_REQUESTED,
    CONFIG_SET,
    REPORT_PROCESSED,
    REPORT_SELECTOR,
    TRADE_CREATED,
    AnchorRecord,
    ApprovalEvent,
    ConfigEvent,
    ExecutionEvent,
    ReportEvent,
    TradeTerms,
)

_FORWARDER_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "getConfig",
        "stateMutability": "view",
        "inputs": [
            {"name": "donId", "type": "uint32"},
            {"name": "configVersion", "type": "uint32"},
        ],
        "outputs": [{"name": "f", "type": "uint8"}, {"name": "signers", "type": "address[]"}],
    },
    {
        "type": "function",
        "name": "report",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "receiver", "type": "address"},
            {"name": "rawReport", "type": "bytes"},
            {"name": "reportContext", "type": "bytes"},
            {"name": "signatures", "type": "bytes[]"},
        ],
        "outputs": [],
    },
]


class ChainReader(ABC):
    """What the audit needs from a chain."""

    @abstractmethod
    def get_config(self, forwarder: str, don_id: int, config_version: int) -> tuple[int, list[str]]:
        """F and the signer set configured on ``forwarder`` for this DON and version."""

    @abstractmethod
    def get_receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        """The receipt of ``tx_hash`` (keys: status, blockNumber, logs), or None if unknown."""

    def prefetch(self, tx_hashes: Sequence[str]) -> None:  # noqa: B027 - optional, not abstract
        """Fetch these transactions ahead, in bulk: the audit asks for each one next.

        Optional: by default nothing is fetched ahead and each is asked for alone.
        """

    def get_transaction_input(self, tx_hash: str) -> bytes | None:
        """The calldata of ``tx_hash``, or None if the chain does not know it.

        Implement this or ``get_report_call``.
        """
        raise NotImplementedError(f"{type(self).__name__} reads no transaction input")

    def get_report_call(self, tx_hash: str) -> bytes | None:
        """The ``rawReport`` argument of the Forwarder.report call in ``tx_hash``, or None.

        By default, ``get_transaction_input`` decoded as ``report(address,bytes,bytes,bytes[])``.
        """
        calldata = self.get_transaction_input(tx_hash)
        if calldata is None or calldata[:4] != REPORT_SELECTOR:
            return None
        try:
            _, raw, _, _ = abi_decode(["address", "bytes", "bytes", "bytes[]"], calldata[4:])
        except Exception:  # noqa: BLE001 - eth-abi raises several kinds on malformed calldata
            return None
        return bytes(raw)

    def get_report_args(self, tx_hash: str) -> tuple[str, bytes, bytes, list[bytes]] | None:
        """(receiver, rawReport, reportContext, signatures) of the ``Forwarder.report`` call, or None."""
        calldata = self.get_transaction_input(tx_hash)
        if calldata is None or calldata[:4] != REPORT_SELECTOR:
            return None
        try:
            receiver, raw, context, sigs = abi_decode(
                ["address", "bytes", "bytes", "bytes[]"], calldata[4:]
            )
        except Exception:  # noqa: BLE001 - eth-abi raises several kinds on malformed calldata
            return None
        return to_checksum(receiver), bytes(raw), bytes(context), [bytes(s) for s in sigs]

    def has_code(self, address: str) -> bool:
        """Whether a contract lives at ``address`` (by default: assumed so)."""
        return True

    def where(self) -> tuple[int | None, str | None]:
        """(chain id, RPC URL) for the report's header; (None, None) if unknown."""
        return None, None

    def trades_created(self, gate: str) -> dict[int, TradeTerms]:
        """The terms of every trade the SettlementGate at ``gate`` created (TradeCreated), by id."""
        raise NotImplementedError(f"{type(self).__name__} reads no trades")

    def approvals_requested(self, gate: str) -> set[int]:
        """The ids of every trade the gate asked approval for (ApprovalRequested)."""
        raise NotImplementedError(f"{type(self).__name__} reads no approval requests")

    @abstractmethod
    def config_history(self, forwarder: str) -> list[ConfigEvent]:
        """Every ConfigSet event of ``forwarder``, oldest first."""

    @abstractmethod
    def report_events(self, forwarder: str) -> list[ReportEvent]:
        """Every ReportProcessed event of ``forwarder``, oldest first."""

    @abstractmethod
    def anchors(self, anchor: str) -> list[AnchorRecord]:
        """Every Anchored event of the AttestationAnchor at ``anchor``, oldest first."""

    def approvals(self, gate: str) -> list[ApprovalEvent]:
        """Every TradeApproved event of the SettlementGate at ``gate``, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} reads no approvals")

    def settled_trades(self, gate: str) -> set[int]:
        """The ids of every trade the gate settled (by default, from ``gate_events``)."""
        return {int(e.subject) for e in self.gate_events(gate) if e.event == "TradeSettled"}

    def gate_events(self, gate: str) -> list[ExecutionEvent]:
        """Every TradeSettled and TradeRefunded event of the SettlementGate at ``gate``, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} reads no settlements")

    def gateway_events(self, gateway: str) -> list[ExecutionEvent]:
        """Every MessageExecuted and MessageFailed event of the CrossChainGateway at ``gateway``."""
        raise NotImplementedError(f"{type(self).__name__} reads no gateway executions")

    def approval_digest(self, gate: str, trade_id: int, block: int) -> bytes:
        """``approvalDigest(tradeId)`` of the gate, as of ``block``."""
        raise NotImplementedError(f"{type(self).__name__} makes no calls")

    def is_approver(self, gate: str, account: str, block: int) -> bool:
        """Whether ``account`` held APPROVER_ROLE on the gate at ``block``."""
        raise NotImplementedError(f"{type(self).__name__} makes no calls")


class Web3ChainReader(ChainReader):
    """A ChainReader over any EVM JSON-RPC endpoint (web3.py).

    ``prefetch`` asks for receipts and transactions in JSON-RPC batches of
    ``batch`` transactions (two calls each): one round trip per batch instead
    of two per transaction, which is what an audit over a remote RPC waits on.
    A batch the endpoint refuses, or that names a transaction it does not
    know, is left to be asked for one by one.

    A contract's events are read from the block its code first appears in
    (found by bisecting on eth_getCode; an RPC without historical state gives
    block 0), to the latest. A range the RPC refuses (public RPCs cap a
    getLogs request's blocks or results) is halved until it is answered, and
    later reads keep that span.
    """

    def __init__(self, w3: Web3, batch: int = 250) -> None:
        self.w3 = w3
        self._abi = _FORWARDER_ABI
        self.batch = batch
        self.span: int | None = None  # blocks per getLogs request once the RPC refused more
        self._ahead: dict[str, tuple[Mapping[str, Any], bytes]] = {}  # lower-case hash -> fetched
        self._starts: dict[str, int] = {}

    def prefetch(self, tx_hashes: Sequence[str]) -> None:
        """Receipts and calldata of ``tx_hashes``, in batches, kept until each is asked for."""
        todo = [h for h in dict.fromkeys(h.lower() for h in tx_hashes) if h not in self._ahead]
        for start in range(0, len(todo), self.batch):
            chunk = todo[start : start + self.batch]
            try:
                with self.w3.batch_requests() as batch:
                    for tx_hash in chunk:
                        batch.add(self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
                        batch.add(self.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
                    answers: list[Any] = list(batch.execute())
            except Exception:  # noqa: BLE001 - an unknown hash or no batch support: one by one
                continue
            for i, tx_hash in enumerate(chunk):
                receipt, tx = answers[2 * i], answers[2 * i + 1]
                self._ahead[tx_hash] = (dict(receipt), bytes(tx["input"]))

    def get_config(self, forwarder: str, don_id: int, config_version: int) -> tuple[int, list[str]]:
        """Read getConfig from the forwarder."""
        contract = self.w3.eth.contract(
            address=ChecksumAddress(HexAddress(HexStr(to_checksum(forwarder)))), abi=self._abi
        )
        f, signers = contract.functions.getConfig(don_id, config_version).call()
        return int(f), [to_checksum(s) for s in signers]

    def get_receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        """Fetch the receipt; None if the chain does not know the transaction."""
        ahead = self._ahead.get(tx_hash.lower())
        if ahead is not None:
            return ahead[0]
        try:
            return dict(self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - web3 raises several kinds for "not found"
            return None

    def get_transaction_input(self, tx_hash: str) -> bytes | None:
        """Fetch the transaction's calldata; None if the chain does not know it."""
        ahead = self._ahead.get(tx_hash.lower())
        if ahead is not None:
            return ahead[1]
        try:
            tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - web3 raises several kinds for "not found"
            return None
        return bytes(tx["input"])

    def where(self) -> tuple[int | None, str | None]:
        """The chain id it answers with, and the provider's URL."""
        try:
            chain_id = int(self.w3.eth.chain_id)
        except Exception:  # noqa: BLE001 - the header only; the checks say what is unreachable
            chain_id = None
        return chain_id, getattr(self.w3.provider, "endpoint_uri", None)

    def has_code(self, address: str) -> bool:
        """eth_getCode at the latest block is not empty."""
        target = ChecksumAddress(HexAddress(HexStr(to_checksum(address))))
        return bool(self.w3.eth.get_code(target))

    def trades_created(self, gate: str) -> dict[int, TradeTerms]:
        """TradeCreated events, decoded."""
        trades = {}
        for log in self._logs(gate, TRADE_CREATED):
            base_token, base_amount, quote_token, low, high, _, action = abi_decode(
                ["address", "uint256", "address", "uint256", "uint256", "uint64", "bytes32"],
                bytes(log["data"]),
            )
            trade_id = int.from_bytes(bytes(log["topics"][1]), "big")
            trades[trade_id] = TradeTerms(
                trade_id=trade_id,
                base_token=to_checksum(base_token),
                quote_token=to_checksum(quote_token),
                base_amount=base_amount,
                min_price=low,
                max_price=high,
                action_hash="0x" + bytes(action).hex(),
                block=log["blockNumber"],
            )
        return trades

    def approvals_requested(self, gate: str) -> set[int]:
        """Trade ids from ApprovalRequested events."""
        return {
            int.from_bytes(bytes(log["topics"][1]), "big")
            for log in self._logs(gate, APPROVAL_REQUESTED)
        }

    def _logs(self, address: str, topic: bytes) -> list[Any]:
        target = ChecksumAddress(HexAddress(HexStr(to_checksum(address))))
        low, high = self._start(target), int(self.w3.eth.block_number)
        logs: list[Any] = []
        while low <= high:
            top = high if self.span is None else min(high, low + self.span - 1)
            ask = {
                "address": target,
                "fromBlock": low,
                "toBlock": top,
                "topics": ["0x" + topic.hex()],
            }
            try:
                logs += self.w3.eth.get_logs(ask)  # type: ignore[arg-type]
            except Web3RPCError:  # too many blocks or results for this RPC: ask for half
                if top == low:
                    raise
                self.span = max(1, (top - low + 1) // 2)
                continue
            low = top + 1
        return logs

    def _start(self, address: ChecksumAddress) -> int:
        """The first block with code at ``address`` (no event of it is earlier); 0 if unknowable.

        Code, once deployed, stays (vouch's contracts are created by plain CREATE
        and cannot self-destruct), so the first block with code is a bisection.
        """
        if address not in self._starts:
            low, high = 0, int(self.w3.eth.block_number)
            try:
                while low < high:
                    middle = (low + high) // 2
                    if self.w3.eth.get_code(address, middle):
                        high = middle
                    else:
                        low = middle + 1
            except Web3Exception:  # no state of old blocks here (not an archive node): read it all
                low = 0
            self._starts[address] = low
        return self._starts[address]

    def config_history(self, forwarder: str) -> list[ConfigEvent]:
        """ConfigSet events, decoded."""
        events = []
        for log in self._logs(forwarder, CONFIG_SET):
            f, signers = abi_decode(["uint8", "address[]"], bytes(log["data"]))
            events.append(
                ConfigEvent(
                    block=log["blockNumber"],
                    don_id=int.from_bytes(bytes(log["topics"][1]), "big"),
                    config_version=int.from_bytes(bytes(log["topics"][2]), "big"),
                    f=f,
                    signers=[to_checksum(a) for a in signers],
                )
            )
        return events

    def report_events(self, forwarder: str) -> list[ReportEvent]:
        """ReportProcessed events, decoded."""
        return [
            ReportEvent(
                tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                block=log["blockNumber"],
                receiver=to_checksum(bytes(log["topics"][1])[-20:]),
                execution_id="0x" + bytes(log["topics"][2]).hex(),
                result=bool(int.from_bytes(bytes(log["data"])[-32:], "big")),
            )
            for log in self._logs(forwarder, REPORT_PROCESSED)
        ]

    def approvals(self, gate: str) -> list[ApprovalEvent]:
        """TradeApproved events, decoded."""
        return [
            ApprovalEvent(
                trade_id=int.from_bytes(bytes(log["topics"][1]), "big"),
                approver=to_checksum(bytes(log["topics"][2])[-20:]),
                tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                block=log["blockNumber"],
            )
            for log in self._logs(gate, TRADE_APPROVED)
        ]

    def settled_trades(self, gate: str) -> set[int]:
        """Trade ids from TradeSettled events."""
        return {
            int.from_bytes(bytes(log["topics"][1]), "big")
            for log in self._logs(gate, TRADE_SETTLED)
        }

    def gate_events(self, gate: str) -> list[ExecutionEvent]:
        """TradeSettled and TradeRefunded events, decoded, in chain order."""
        return self._events(gate, {TRADE_SETTLED: "TradeSettled", TRADE_REFUNDED: "TradeRefunded"})

    def gateway_events(self, gateway: str) -> list[ExecutionEvent]:
        """MessageExecuted and MessageFailed events, decoded, in chain order."""
        names = {MESSAGE_EXECUTED: "MessageExecuted", MESSAGE_FAILED: "MessageFailed"}
        return self._events(gateway, names)

    def _events(self, address: str, names: dict[bytes, str]) -> list[ExecutionEvent]:
        logs = [log for topic in names for log in self._logs(address, topic)]
        logs.sort(key=lambda log: (log["blockNumber"], log["logIndex"]))
        trade_ids = {TRADE_SETTLED, TRADE_REFUNDED}
        events = []
        for log in logs:
            topic, subject = bytes(log["topics"][0]), bytes(log["topics"][1])
            events.append(
                ExecutionEvent(
                    event=names[topic],
                    subject=int.from_bytes(subject, "big")
                    if topic in trade_ids
                    else "0x" + subject.hex(),
                    tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                    block=log["blockNumber"],
                )
            )
        return events

    def _call(self, to: str, data: bytes, block: int) -> bytes:
        target = ChecksumAddress(HexAddress(HexStr(to_checksum(to))))
        return bytes(self.w3.eth.call({"to": target, "data": HexStr("0x" + data.hex())}, block))

    def approval_digest(self, gate: str, trade_id: int, block: int) -> bytes:
        """eth_call approvalDigest(uint256) at ``block``."""
        return self._call(gate, _APPROVAL_DIGEST + trade_id.to_bytes(32, "big"), block)[:32]

    def is_approver(self, gate: str, account: str, block: int) -> bool:
        """eth_call hasRole(APPROVER_ROLE, account) at ``block``."""
        word = bytes(12) + bytes.fromhex(to_checksum(account)[2:])
        return any(self._call(gate, _HAS_ROLE + APPROVER_ROLE + word, block))

    def anchors(self, anchor: str) -> list[AnchorRecord]:
        """Anchored events, decoded."""
        records = []
        for log in self._logs(anchor, ANCHORED):
            from_seq, to_seq, head = abi_decode(["uint64", "uint64", "bytes32"], bytes(log["data"]))
            records.append(
                AnchorRecord(
                    index=int.from_bytes(bytes(log["topics"][1]), "big"),
                    root="0x" + bytes(log["topics"][2]).hex(),
                    from_seq=from_seq,
                    to_seq=to_seq,
                    head_hash="0x" + head.hex(),
                    block=log["blockNumber"],
                    tx_hash=_tx_hex(log.get("transactionHash")),
                )
            )
        return records


def _tx_hex(value: Any) -> str | None:
    if value is None:
        return None
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if text.startswith("0x") else "0x" + text
