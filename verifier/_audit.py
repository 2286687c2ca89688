"""Audit: re-verify every log entry from the log itself and the chain, trusting neither.

Per entry: the hash chain; observation signatures against the DON's onchain
signer set; the median recomputed; report signatures (exactly f+1 distinct
configured signers) and the report's contents against the consensus and the
proposal; each submission against its transaction, receipt and event; each
human decision (``hitl``) against its approver's signature and, for approvals,
the gate's EIP-712 digest, APPROVER_ROLE and TradeApproved event at that block.
The other way round: every report the forwarder processed, every approval,
settlement and refund the gate recorded, and every message execution (or
failed execution) on a CrossChainGateway must be explained by the log (else an
ALARM).
"""

from __future__ import annotations

import gc
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any, Literal, NamedTuple, Protocol

from eth_abi import decode as abi_decode
from eth_typing import ChecksumAddress, HexAddress, HexStr
from pydantic import BaseModel, ValidationError
from web3 import Web3
from web3.exceptions import Web3Exception, Web3RPCError

from . import _batch
from ._batch import Recoverer
from ._canonical import MISS, dump_parsed, encode_str, keccak, parse_exact, parse_fast
from ._consensus import quorum_size, recompute, report_verdict
from ._errors import ConsensusError, EncodingError, VerifierError
from ._hitl import (
    APPROVER_ROLE,
    MESSAGE_EXECUTED,
    MESSAGE_FAILED,
    TRADE_APPROVED,
    TRADE_REFUNDED,
    TRADE_SETTLED,
    rejection_digest,
)
from ._log import GENESIS, AttestationLog, content_problem, entry_digest
from ._merkle import leaf, merkle_root
from ._report import METADATA_LENGTH, report_digest
from ._signing import OBSERVATION_DOMAIN
from ._types import to_checksum

Status = Literal["ok", "fail", "skip"]
RULE_CLOCK_SLACK_MS = 60_000  # how far a feed rule's logged decision time may precede its entry
_BUCKETS_PER_WORKER = 16
_EIP191_PREFIX = b"\x19Ethereum Signed Message:\n32"
REPORT_PROCESSED = keccak(b"ReportProcessed(address,bytes32,bytes2,bool)")
REPORT_SELECTOR = keccak(b"report(address,bytes,bytes,bytes[])")[:4]
CONFIG_SET = keccak(b"ConfigSet(uint32,uint32,uint8,address[])")
ANCHORED = keccak(b"Anchored(uint256,bytes32,uint64,uint64,bytes32)")
_APPROVAL_DIGEST = keccak(b"approvalDigest(uint256)")[:4]
_HAS_ROLE = keccak(b"hasRole(bytes32,address)")[:4]


class ConfigEvent(BaseModel):
    """A ConfigSet event: the signer set of (don_id, config_version) from ``block`` on."""

    block: int
    don_id: int
    config_version: int
    f: int
    signers: list[str]


class ReportEvent(BaseModel):
    """A ReportProcessed event: a report the forwarder delivered (or recorded as failed)."""

    tx_hash: str
    block: int
    receiver: str
    execution_id: str
    result: bool


class AnchorRecord(BaseModel):
    """An Anchored event: log entries from_seq..to_seq committed onchain."""

    index: int
    root: str
    from_seq: int
    to_seq: int
    head_hash: str
    block: int


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


class AuditFinding(NamedTuple):
    """The result of one check on one entry (``seq`` 0: about the chain, not one entry).

    A named tuple: a big audit makes hundreds of thousands of these, across processes.
    """

    seq: int
    execution_id: str
    kind: str
    check: str
    status: Status
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the check passed (a skipped check is neither ok nor failed)."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (for JSON)."""
        return self._asdict()


@dataclass
class AuditReport:
    """Every check on every entry; ``ok`` when none failed."""

    results: list[AuditFinding]
    entries: int

    @property
    def failures(self) -> list[AuditFinding]:
        """The checks that failed."""
        return [r for r in self.results if r.status == "fail"]

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.failures

    def by_check(self) -> dict[str, CheckTally]:
        """How each check came out over all entries, checks in the order they first appear."""
        tallies: dict[str, CheckTally] = {}
        for (check, status), count in Counter((r.check, r.status) for r in self.results).items():
            setattr(tallies.setdefault(check, CheckTally()), status, count)
        for r in self.results:
            if r.status == "skip" and not tallies[r.check].skipped_because:
                tallies[r.check].skipped_because = r.detail
        return tallies


@dataclass
class CheckTally:
    """One check's results over a whole audit; ``skipped_because``: the first skip's reason."""

    ok: int = 0
    fail: int = 0
    skip: int = 0
    skipped_because: str = ""


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


class ExecutionEvent(BaseModel):
    """A state change the log must explain: a settlement, refund or message execution.

    ``event`` is the gate's TradeSettled/TradeRefunded or the gateway's
    MessageExecuted/MessageFailed; ``subject`` is the trade id (gate events) or the message id (gateway events).
    """

    event: Literal["TradeSettled", "TradeRefunded", "MessageExecuted", "MessageFailed"]
    subject: int | str
    tx_hash: str
    block: int


class ApprovalEvent(BaseModel):
    """One TradeApproved event: which trade, which approver, where."""

    trade_id: int
    approver: str
    tx_hash: str
    block: int


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
                )
            )
        return records


SignerSets = Mapping[tuple[int, int], tuple[int, list[str]]]
Row = tuple[Any, ...]  # (seq, execution_id, kind, payload, created_at, prev_hash, entry_hash)


class _Entry(NamedTuple):
    """One row as the audit reads it: the payload parsed once, plain fields (no model)."""

    seq: int
    execution_id: str
    kind: str
    payload: dict[str, Any]
    created_at: int
    entry_hash: str


# _Entry(...) without the Python frame of the generated __new__ (one tuple per entry)
_new_entry: Callable[[tuple[Any, ...]], _Entry] = partial(tuple.__new__, _Entry)
_EXACT_RUN = 32  # a kind whose payload orjson could not vouch for: go straight to json this often


class _HasPayload(Protocol):
    @property
    def payload(self) -> dict[str, Any]: ...


def _read(rows: list[Row]) -> tuple[list[_Entry], dict[int, str]]:
    """The entries of ``rows``, and each broken entry's content problem (hash, canonical form).

    The same checks as ``LogEntry.compute_hash`` and ``is_canonical``, with the
    canonical text computed once per entry for both: by ``parse_fast`` where it
    vouches for the stored text (the canonical text is then the text itself,
    hashed as the bytes it was checked as), else by ``parse_exact``. A kind
    whose payloads carry what orjson cannot read (integers past 64 bits, as
    most observations do) skips ``parse_fast`` for a while after each miss.
    """
    entries: list[_Entry] = []
    broken = {}
    append, new_entry, fast, exact, miss = entries.append, _new_entry, parse_fast, parse_exact, MISS
    digest_of, fromhex = entry_digest, bytes.fromhex
    skip: dict[str, int] = {}
    last_hash, last_digest = None, b""  # the entry before, when its stored hash held
    ids: dict[str, str] = {}  # one str per execution: findings pickle (and unpickle) it once
    for row in rows:
        seq, execution_id, kind, text = int(row[0]), str(row[1]), str(row[2]), str(row[3])
        created_at, prev_hash, entry_hash = int(row[4]), str(row[5]), str(row[6])
        execution_id = ids.setdefault(execution_id, execution_id)
        value = miss
        if not skip.get(kind):
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:
                pass
            else:
                value = fast(data)
                if value is miss:
                    skip[kind] = _EXACT_RUN
        else:
            skip[kind] -= 1
        if value is miss:
            value, canonical = exact(text)
            encoded = None
            if canonical == text:
                try:
                    encoded = text.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate: hashing it fails as it always did
                    pass
            if encoded is None:  # unreadable or not canonical: content_problem says which
                problem = content_problem(
                    seq, execution_id, kind, text, canonical, created_at, prev_hash, entry_hash
                )
                if problem:
                    broken[seq] = problem
                last_hash = None
                payload = value if isinstance(value, dict) else {}
                append(new_entry((seq, execution_id, kind, payload, created_at, entry_hash)))
                continue
            data = encoded
        # canonical: only the hash to check, over the bytes of the text
        try:
            prev = last_digest if prev_hash == last_hash else fromhex(prev_hash[2:])
        except ValueError:
            broken[seq] = f"prev_hash {prev_hash[:20]!r} is not a 0x-hex hash (edited)"
            last_hash = None
        else:
            digest = digest_of(prev, seq, execution_id, kind, data, created_at)
            if "0x" + digest.hex() == entry_hash:
                last_hash, last_digest = entry_hash, digest
            else:
                broken[seq] = "content does not match its hash (edited)"
                last_hash = None
        payload = value if isinstance(value, dict) else {}
        append(new_entry((seq, execution_id, kind, payload, created_at, entry_hash)))
    return entries, broken


class _Auditor:
    def __init__(
        self,
        rows: list[Row],
        chain: ChainReader | None,
        signers: SignerSets | None,
        forwarder: str | None = None,
        anchor: str | None = None,
        workers: int = 1,
        gate: str | None = None,
        gateway: str | None = None,
    ) -> None:
        self.rows = rows
        self.entries: list[_Entry] = []
        self.gate = gate
        self.gateway = gateway
        self.workers = workers
        self.linkage = True
        self._jobs: dict[int, list[tuple[str, int]] | str] = {}
        self._results: list[bytes | str] = []
        self._inline = True
        self.chain = chain
        self.signers = dict(signers or {})
        self.forwarder = forwarder
        self.anchor = anchor
        self.found: list[tuple[int, str, str, str, Status, str]] = []  # AuditFinding fields
        self.by_exec_all: dict[str, list[_Entry]] = defaultdict(list)
        self.by_seq: dict[int, _Entry] = {}
        self._histories: dict[str, list[ConfigEvent]] = {}
        self._gates: dict[str, tuple[list[ApprovalEvent], set[int]]] = {}
        self._lower_sets: dict[tuple[int, bool], tuple[list[str], set[str]]] = {}

    def run(self) -> AuditReport:
        self.check_all()
        found = list(map(AuditFinding._make, self.found))
        return AuditReport(results=found, entries=len(self.entries))

    def check_all(self) -> None:
        """Run every check; the findings, as plain tuples, are in ``self.found``."""
        self.entries, content = _read(self.rows)
        entries = self.entries
        for entry in entries:
            self.by_exec_all[entry.execution_id].append(entry)
        self.by_seq = {entry.seq: entry for entry in entries}
        # a pool recovers while the rest is read; without one, each check recovers its own
        self._inline = not (self.workers > 1 and len(entries) >= _batch.PARALLEL_THRESHOLD)
        if not self._inline:
            self._recoverer = Recoverer(self.workers, expected=len(entries))
            self._collect(entries)
        broken = _linkage([(r[0], r[1], r[5], r[6]) for r in self.rows]) if self.linkage else {}
        for seq, problem in content.items():
            broken[seq] = "; ".join(filter(None, [broken.get(seq), problem]))
        if not self._inline:
            self._results = self._recoverer.results()
        if self.chain is not None:
            self.chain.prefetch(_submitted(entries))
        checks: dict[str, Callable[[_Entry], None]] = {
            "observations": self._observations,
            "consensus": self._consensus,
            "skipped": self._consensus,  # a feed's rule said not to report: still recomputed
            "report": self._report,
            "submission": self._submission,
            "hitl": self._hitl,
            "retry": self._retry,
        }
        found, guarded = self.found.append, self._guarded
        for entry in entries:
            seq, kind = entry.seq, entry.kind
            breaks = broken.get(seq)
            if breaks is None:
                found((seq, entry.execution_id, kind, "chain", "ok", ""))
            else:
                found((seq, entry.execution_id, kind, "chain", "fail", breaks))
            check = checks.get(kind)
            if check is not None:
                guarded(entry, check)
        if self.chain is not None and self.anchor:
            self._anchors(self.chain, self.anchor, entries)
        if self.chain is not None and self.forwarder:
            self._unexplained(self.chain, self.forwarder)
        if self.chain is not None and self.gate:
            self._unexplained_approvals(self.chain, self.gate)
            self._unexplained_gate_events(self.chain, self.gate)
        if self.chain is not None and self.gateway:
            self._unexplained_executions(self.chain, self.gateway)

    def _anchors(self, chain: ChainReader, anchor: str, entries: list[_Entry]) -> None:
        """Each anchored range must recompute to its onchain root and head; say what is not anchored."""
        by_seq = {e.seq: e for e in entries}
        covered: set[int] = set()
        for record in chain.anchors(anchor):
            span = range(record.from_seq, record.to_seq + 1)
            covered.update(span)
            problem = _anchor_problem(record, [by_seq.get(seq) for seq in span])
            for seq in span:
                if seq in by_seq:
                    self._add(
                        by_seq[seq],
                        "anchored",
                        "fail" if problem else "ok",
                        problem or f"anchor #{record.index}",
                    )
            if problem and any(seq not in by_seq for seq in span):
                self._global(
                    "anchored",
                    f"anchor #{record.index} covers #{record.from_seq}..#{record.to_seq}: {problem}",
                )
        for entry in entries:
            if entry.seq not in covered:
                self._add(entry, "anchored", "skip", "not anchored yet (`vouch log anchor`)")

    def _unexplained(self, chain: ChainReader, forwarder: str) -> None:
        """Every report the forwarder processed onchain must have a submission entry."""
        logged = self._logged_txs("submission")
        for event in chain.report_events(forwarder):
            if event.tx_hash.lower() not in logged:
                self._global(
                    "explained by the log",
                    f"ALARM: report {event.execution_id[:18]}… to {event.receiver} in tx {event.tx_hash} "
                    f"(block {event.block}, delivered={event.result}) has no log entry",
                )

    def _gate_events(self, chain: ChainReader, gate: str) -> tuple[list[ApprovalEvent], set[int]]:
        """The gate's approvals and settled trade ids, read once per audit."""
        key = gate.lower()
        if key not in self._gates:
            self._gates[key] = (chain.approvals(gate), chain.settled_trades(gate))
        return self._gates[key]

    def _unexplained_approvals(self, chain: ChainReader, gate: str) -> None:
        """Every approval the gate recorded onchain must have a logged, signed decision."""
        logged = self._logged_txs("hitl")
        for event in self._gate_events(chain, gate)[0]:
            if event.tx_hash.lower() not in logged:
                self._global(
                    "explained by the log",
                    f"ALARM: trade #{event.trade_id} approved onchain by {event.approver} in tx "
                    f"{event.tx_hash} (block {event.block}) has no hitl log entry",
                )

    def _unexplained_gate_events(self, chain: ChainReader, gate: str) -> None:
        """A settlement must be a logged submission; a refund, of a trade the log never settled."""
        submitted = self._logged_txs("submission")
        proposed, settled = self._logged_trades()
        for event in chain.gate_events(gate):
            where = f"tx {event.tx_hash} (block {event.block})"
            if event.event == "TradeSettled" and event.tx_hash.lower() not in submitted:
                self._global(
                    "explained by the log",
                    f"ALARM: trade #{event.subject} settled onchain in {where} has no log entry",
                )
            elif event.event == "TradeRefunded":
                self._refund(int(event.subject), where, proposed, settled)

    def _refund(self, trade_id: int, where: str, proposed: set[int], settled: set[int]) -> None:
        if trade_id in settled:
            detail = f"trade #{trade_id} refunded onchain in {where}, yet the log says it settled"
            return self._global("explained by the log", detail)
        if trade_id not in proposed:
            detail = f"ALARM: trade #{trade_id} refunded onchain in {where} has no log entry"
            return self._global("explained by the log", detail)
        self.found.append(
            (
                0,
                "",
                "chain",
                "explained by the log",
                "ok",
                f"trade #{trade_id} refunded in {where}: proposed in the log, never settled",
            )
        )

    def _logged_trades(self) -> tuple[set[int], set[int]]:
        """Trade ids the log proposed, and those its submissions settled."""
        proposed, settled = set(), set()
        for entries in self.by_exec_all.values():
            proposal = next((e for e in reversed(entries) if e.kind == "proposal"), None)
            if proposal is None or proposal.payload.get("trade_id") is None:
                continue
            proposed.add(int(proposal.payload["trade_id"]))
            if any(
                e.kind == "submission" and e.payload.get("status") == "settled" for e in entries
            ):
                settled.add(int(proposal.payload["trade_id"]))
        return proposed, settled

    def _unexplained_executions(self, chain: ChainReader, gateway: str) -> None:
        """Every message the gateway executed (or failed to) must be a logged submission."""
        submitted = self._logged_txs("submission")
        for event in chain.gateway_events(gateway):
            if event.tx_hash.lower() not in submitted:
                self._global(
                    "explained by the log",
                    f"ALARM: {event.event} of message {str(event.subject)[:18]}… in tx "
                    f"{event.tx_hash} (block {event.block}) has no log entry",
                )

    def _logged_txs(self, kind: str) -> set[str]:
        """The transaction hashes the ``kind`` entries of the log name (every one), lower case."""
        return {
            str(e.payload.get("tx_hash") or "").lower()
            for entries in self.by_exec_all.values()
            for e in entries
            if e.kind == kind
        }

    def _global(self, check: str, detail: str) -> None:
        self.found.append((0, "", "chain", check, "fail", detail))

    def _guarded(self, entry: _Entry, check: Callable[[_Entry], None]) -> None:
        try:
            check(entry)
        except (VerifierError, ValidationError, KeyError, ValueError, TypeError) as exc:
            self._add(entry, entry.kind, "fail", f"unreadable payload: {type(exc).__name__}: {exc}")

    def _add(self, entry: _Entry, check: str, status: Status, detail: str = "") -> None:
        self.found.append((entry.seq, entry.execution_id, entry.kind, check, status, detail))

    def _signer_set(
        self, forwarder: str, don_id: int, version: int, block: int | None
    ) -> tuple[int, list[str]] | None:
        """The signers of (don_id, version) active at ``block``, from the forwarder's ConfigSet history."""
        given = self.signers.get((don_id, version))
        if given is not None:
            return given
        if self.chain is None:
            return None
        if forwarder not in self._histories:
            self._histories[forwarder] = self.chain.config_history(forwarder)
        history = self._histories[forwarder]
        if not history:  # a forwarder that emits no ConfigSet: its current config is all we have
            return self.chain.get_config(forwarder, don_id, version)
        active = [
            e
            for e in history
            if (e.don_id, e.config_version) == (don_id, version)
            and (block is None or e.block <= block)
        ]
        return (active[-1].f, active[-1].signers) if active else (0, [])

    def _lowered(self, signers: list[str], bare: bool) -> set[str]:
        """``{s.lower() for s in signers}`` (without "0x" if ``bare``), once per signer list."""
        key = (id(signers), bare)
        cached = self._lower_sets.get(key)
        if cached is None or cached[0] is not signers:  # the list is kept: its id stays its own
            if bare:
                lowered = {s.lower().removeprefix("0x") for s in signers}
            else:
                lowered = {s.lower() for s in signers}
            cached = self._lower_sets[key] = (signers, lowered)
        return cached[1]

    def _block_of(self, entry: _Entry) -> int | None:
        """The block of the submission that followed ``entry`` in its round (None: none did)."""
        submission = self._later(entry, "submission")
        block = submission.payload.get("block_number") if submission else None
        return int(block) if block is not None else None

    def _earlier(self, entry: _Entry, kind: str) -> _Entry | None:
        """The latest ``kind`` entry of ``entry``'s execution logged before it."""
        found = None
        for e in self.by_exec_all[entry.execution_id]:
            if e.seq >= entry.seq:
                break
            if e.kind == kind:
                found = e
        return found

    def _later(self, entry: _Entry, kind: str) -> _Entry | None:
        """The first ``kind`` entry of ``entry``'s execution after it, before any retry."""
        for e in self.by_exec_all[entry.execution_id]:
            if e.seq <= entry.seq:
                continue
            if e.kind == "retry":
                return None
            if e.kind == kind:
                return e
        return None

    def _this_round(self, entry: _Entry, kind: str) -> list[_Entry]:
        """The ``kind`` entries before ``entry`` since its execution's last report or retry.

        An execution whose DON round was cut short and run again (a ``retry``
        entry), or that reported more than once, is audited round by round: a
        report against its own round's consensus, a submission against the
        report just before it.
        """
        found: list[_Entry] = []
        for e in self.by_exec_all[entry.execution_id]:
            if e.seq >= entry.seq:
                break
            if e.kind in ("report", "retry"):
                found = []
            elif e.kind == kind:
                found.append(e)
        return found

    def _collect(self, entries: list[_Entry]) -> None:
        """Queue every signature for recovery; big logs recover in worker processes meanwhile."""
        add = self._recoverer.add
        for entry in entries:
            if entry.kind in ("observations", "report"):
                try:
                    jobs = self._signature_jobs(entry)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    self._jobs[entry.seq] = f"{type(exc).__name__}: {exc}"
                else:
                    self._jobs[entry.seq] = [(claimed, add(job)) for claimed, job in jobs]

    @staticmethod
    def _signature_jobs(entry: _Entry, raw: bytes | None = None) -> list[tuple[str, _batch.Job]]:
        """(claimed signer, recovery job) per signature of an observations or report entry.

        ``raw``: a report's raw bytes, when the caller already decoded them.
        """
        if entry.kind == "observations":
            return [_observation_job(o) for o in entry.payload["observations"]]
        p = entry.payload
        digest = report_digest(_bytes(p["raw"]) if raw is None else raw, _bytes(p["context"]))
        return [("", (digest, _bytes(sig), 0)) for sig in p["signatures"]]

    def _recovered(self, entry: _Entry, raw: bytes | None = None) -> list[tuple[str, bytes | str]]:
        """(claimed signer, recovered 20-byte address or why not) per signature of ``entry``."""
        if self._inline:  # recovered right here, from the same jobs ``_collect`` would queue
            try:
                jobs = self._signature_jobs(entry, raw)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"{type(exc).__name__}: {exc}") from None
            recover = _batch.recover
            return [(claimed, recover(*job)) for claimed, job in jobs]
        queued = self._jobs.get(entry.seq, "no signatures queued")
        if isinstance(queued, str):
            raise ValueError(queued)
        return [(claimed, self._results[index]) for claimed, index in queued]

    def _observations(self, entry: _Entry) -> None:
        don = entry.payload["don"]
        config = self._signer_set(
            don["forwarder"], don["don_id"], don["config_version"], self._block_of(entry)
        )
        seen: set[str] = set()
        for claimed, got in self._recovered(entry):
            if isinstance(got, str) or got.hex() != claimed.lower().removeprefix("0x"):
                signer = got if isinstance(got, str) else f"is signed by {to_checksum(got)}"
                return self._add(
                    entry,
                    "observation signatures",
                    "fail",
                    f"observation claiming {claimed}: {signer}",
                )
            seen.add(claimed.lower())
        self._add(entry, "observation signatures", "ok", f"{len(seen)} distinct signers")
        if config is None:
            return self._add(
                entry, "signers configured", "skip", "no chain and no signer set given"
            )
        f, signers = config
        strangers = sorted(seen - self._lowered(signers, False))
        if strangers:
            names = ", ".join(to_checksum(s) for s in strangers)
            return self._add(entry, "signers configured", "fail", f"not in the DON config: {names}")
        if len(seen) < quorum_size(f):
            return self._add(
                entry,
                "signers configured",
                "fail",
                f"{len(seen)} observations, 2f+1 = {quorum_size(f)} needed",
            )
        self._add(entry, "signers configured", "ok")

    def _observations_of(self, entry: _Entry) -> _Entry:
        obs = self.by_seq.get(int(entry.payload["observations_seq"]))
        if obs is None or obs.kind != "observations" or obs.execution_id != entry.execution_id:
            raise ValueError(
                f"entry #{entry.payload['observations_seq']} is not this execution's observations"
            )
        return obs

    def _values(self, entry: _Entry) -> list[Any]:
        obs = self._observations_of(entry)
        values = [o["observation"]["value"] for o in obs.payload["observations"]]
        if entry.payload["mode"] == "median":
            for v in values:  # an int, not a bool
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ValueError("an observed value is not an integer")
        return values

    def _parameters(self, entry: _Entry) -> None:
        """The consensus's logged f is the f of the DON config its observations were made under."""
        f = entry.payload.get("f")
        if not isinstance(f, int) or isinstance(f, bool):
            return self._add(entry, "consensus parameters", "fail", "no integer f logged")
        don = self._observations_of(entry).payload["don"]
        config = self._signer_set(
            don["forwarder"], don["don_id"], don["config_version"], self._block_of(entry)
        )
        if config is None:
            detail = "no chain and no signer set given"
            return self._add(entry, "consensus parameters", "skip", detail)
        if config[0] != f:
            detail = f"logged f={f}, the DON config has f={config[0]}"
            return self._add(entry, "consensus parameters", "fail", detail)
        self._add(entry, "consensus parameters", "ok", f"{entry.payload['mode']}, f={f}")

    def _consensus(self, entry: _Entry) -> None:
        self._parameters(entry)
        p = entry.payload
        mode = str(p["mode"])
        f = int(p["f"])
        try:
            recomputed = recompute(mode, self._values(entry), f)
        except ConsensusError as exc:
            return self._add(entry, "consensus recomputed", "fail", str(exc))
        if recomputed != p["value"]:
            detail = f"{mode} of the observations is {recomputed}, log says {p['value']}"
            return self._add(entry, "consensus recomputed", "fail", detail)
        self._add(entry, "consensus recomputed", "ok", f"{mode} {recomputed}")
        if "why" in p or "rule" in p:  # a feed round: was reporting (or not) the rule's call?
            self._feed_rule(entry)

    def _feed_rule(self, entry: _Entry) -> None:
        """The logged verdict follows from the logged deviation/heartbeat rule and what it compared."""
        p, rule = entry.payload, entry.payload.get("rule")
        if rule is None:
            ok = p.get("why") == "always" and entry.kind == "consensus"
            detail = "no deviation/heartbeat rule: reports every round"
            if not ok:
                detail = f"verdict {p.get('why')!r} without the rule's parameters in the log"
            return self._add(entry, "feed rule", "ok" if ok else "fail", detail)
        problems = self._rule_inputs(entry, rule)
        previous = rule["previous"]
        last = (int(previous["value"]), int(previous["at"])) if previous else None
        verdict = report_verdict(
            int(rule["deviation_bps"]),
            int(rule["heartbeat"]),
            last,
            int(p["value"]),
            int(rule["at"]),
        )
        if verdict != p.get("why") or entry.kind != ("consensus" if verdict else "skipped"):
            problems.append(
                f"the rule says {verdict or 'skip'!r}, the log says {entry.kind} {p.get('why')!r}"
            )
        against = (
            f"#{previous['seq']} ({previous['value']} at {previous['at']})"
            if previous
            else "no earlier report"
        )
        detail = f"deviation {rule['deviation_bps']} bps, heartbeat {rule['heartbeat']}s, against {against}: {verdict or 'skip'}"
        self._add(entry, "feed rule", "fail" if problems else "ok", "; ".join(problems) or detail)

    def _rule_inputs(self, entry: _Entry, rule: dict[str, Any]) -> list[str]:
        """What the rule compared against must be in the log, and its clock the entry's."""
        problems = []
        at_ms = int(rule["at"]) * 1000
        if not entry.created_at - RULE_CLOCK_SLACK_MS <= at_ms <= entry.created_at:
            problems.append(f"decided at {rule['at']}, yet logged at {entry.created_at} ms")
        previous = rule["previous"]
        if previous is None:
            return problems
        earlier = self.by_seq.get(int(previous["seq"]))
        feed = entry.payload.get("feed")
        if earlier is None or earlier.seq >= entry.seq or earlier.kind != "consensus":
            return [*problems, f"#{previous['seq']} is no earlier report of {feed}"]
        before = earlier.payload.get("rule") or {}
        if earlier.payload.get("feed") != feed or earlier.payload["value"] != previous["value"]:
            problems.append(f"#{earlier.seq} did not report {feed} = {previous['value']}")
        if before.get("at") != previous["at"]:
            problems.append(
                f"#{earlier.seq} was decided at {before.get('at')}, not {previous['at']}"
            )
        thresholds = ("deviation_bps", "heartbeat")
        if any(before.get(key) != rule[key] for key in thresholds):
            problems.append(
                f"the thresholds differ from those of #{earlier.seq}, the report it compared against"
            )
        return problems

    def _report(self, entry: _Entry) -> None:
        p = entry.payload
        raw = _bytes(p["raw"])
        fields = _ReportFields.parse(raw)
        config = self._signer_set(
            p["forwarder"], fields.don_id, fields.config_version, self._block_of(entry)
        )
        recovered = [got for _, got in self._recovered(entry, raw)]
        unusable = [got for got in recovered if isinstance(got, str)]
        if unusable:
            self._add(entry, "report signatures", "fail", unusable[0])
        else:
            self._report_signers(entry, [a for a in recovered if isinstance(a, bytes)], config)
        self._report_contents(entry, fields)

    def _report_signers(
        self, entry: _Entry, signers: list[bytes], config: tuple[int, list[str]] | None
    ) -> None:
        if len(set(signers)) != len(signers):
            return self._add(entry, "report signatures", "fail", "a signer signed twice")
        if config is None:
            return self._add(entry, "report signatures", "skip", "no chain and no signer set given")
        f, allowed = config
        known = self._lowered(allowed, True)
        strangers = [to_checksum(s) for s in signers if s.hex() not in known]
        if strangers:
            detail = f"not in the DON config: {', '.join(strangers)}"
            return self._add(entry, "report signatures", "fail", detail)
        if len(signers) != f + 1:
            detail = f"{len(signers)} signatures, f+1 = {f + 1} required"
            return self._add(entry, "report signatures", "fail", detail)
        self._add(entry, "report signatures", "ok", f"{len(signers)} of {len(allowed)} signers")

    def _report_contents(self, entry: _Entry, fields: _ReportFields) -> None:
        proposal = self._earlier(entry, "proposal")
        p = entry.payload
        problems = []
        if (
            fields.chain_id != int(p["chain_id"])
            or "0x" + fields.receiver.hex() != p["receiver"].lower()
        ):
            problems.append("body's chain id or receiver differ from the logged target")
        agreed = self._this_round(entry, "consensus")
        if proposal is not None or len(fields.payload) == 64:  # (tradeId, price)
            consensus = agreed[-1] if agreed else None
            problems += _settlement_problems(fields, proposal, consensus)
        else:
            problems += _outcome_problems(fields, entry.execution_id, agreed)
        self._add(entry, "report contents", "fail" if problems else "ok", "; ".join(problems))

    def _submission(self, entry: _Entry) -> None:
        p = entry.payload
        if not p.get("tx_hash"):
            return self._add(
                entry, "transaction", "ok", f"rejected before mining: {p.get('error')}"
            )
        if self.chain is None:
            return self._add(entry, "transaction", "skip", "no chain to check against")
        receipt = self.chain.get_receipt(p["tx_hash"])
        if receipt is None:
            return self._add(entry, "transaction", "fail", f"{p['tx_hash']} is not on the chain")
        problems = self._receipt_problems(entry, receipt)
        self._add(
            entry,
            "transaction",
            "fail" if problems else "ok",
            "; ".join(problems) or f"block {receipt['blockNumber']}",
        )

    def _receipt_problems(self, entry: _Entry, receipt: Mapping[str, Any]) -> list[str]:
        p = entry.payload
        problems = []
        logged_status = p.get("receipt_status", 1)  # a relay logs only mined, successful ones
        if int(receipt["blockNumber"]) != int(p["block_number"]) or int(receipt["status"]) != int(
            logged_status
        ):
            problems.append("block or receipt status differ from the chain")
        if "gas_used" in p and int(receipt.get("gasUsed", -1)) != int(p["gas_used"]):
            problems.append(
                f"logged gas_used {p['gas_used']} is not the receipt's {receipt.get('gasUsed')}"
            )
        report = self._earlier(entry, "report")
        if (
            report is None
            or self.chain is None
            or self.chain.get_report_call(p["tx_hash"]) != _bytes(report.payload["raw"])
        ):
            problems.append("the transaction did not carry this execution's logged report")
        delivered = _delivered(receipt)
        if delivered is None or delivered != (p["status"] in ("settled", "delivered")):
            problems.append(
                f"ReportProcessed result {delivered} does not match status {p['status']!r}"
            )
        return problems

    def _retry(self, entry: _Entry) -> None:
        """A DON round run again: only after earlier attempts of this execution that mined nothing.

        The entries it names must be this execution's, logged before it; and no
        submission of the execution before it may have been mined as delivered
        (running a delivered execution again is a second settlement attempt).
        """
        earlier = [e for e in self.by_exec_all[entry.execution_id] if e.seq < entry.seq]
        mine = {e.seq for e in earlier}
        named = [int(seq) for seq in entry.payload.get("earlier_seqs", [])]
        problems = []
        strangers = [seq for seq in named if seq not in mine]
        if strangers:
            problems.append(
                f"names entries that are not this execution's earlier ones: {strangers}"
            )
        delivered = [
            e.seq
            for e in earlier
            if e.kind == "submission"
            and e.payload.get("tx_hash")
            and e.payload.get("status") in ("settled", "delivered")
        ]
        if delivered:
            problems.append(f"the execution was already delivered onchain (#{delivered[0]})")
        detail = "; ".join(problems) or f"after {len(named)} entries of a cut-short round"
        self._add(entry, "retry", "fail" if problems else "ok", detail)

    def _hitl(self, entry: _Entry) -> None:
        """A human's decision: signed by the approver it names; approvals match the chain."""
        p = entry.payload
        decision, approver = p["decision"], to_checksum(p["approver"])
        if decision not in ("approved", "rejected"):
            return self._add(entry, "approver signature", "fail", f"unknown decision {decision!r}")
        digest = _bytes(p["digest"])
        if decision == "rejected" and digest != rejection_digest(p):
            detail = "the signed digest is not the digest of this rejection"
            return self._add(entry, "approver signature", "fail", detail)
        got = _batch.recover_one(digest, _bytes(p["signature"]), 27)
        if isinstance(got, str) or to_checksum(got) != approver:
            signer = got if isinstance(got, str) else f"signed by {to_checksum(got)}"
            return self._add(entry, "approver signature", "fail", f"claims {approver}: {signer}")
        self._add(entry, "approver signature", "ok", f"{decision} by {approver}")
        if self.chain is None:
            return self._add(entry, "decision onchain", "skip", "no chain to check against")
        problems = self._decision_problems(self.chain, p, approver, digest)
        detail = "; ".join(problems) or f"trade #{p['trade_id']} {decision}, matches the gate"
        self._add(entry, "decision onchain", "fail" if problems else "ok", detail)

    def _decision_problems(
        self, chain: ChainReader, p: dict[str, Any], approver: str, digest: bytes
    ) -> list[str]:
        gate, trade_id, block = p["gate"], int(p["trade_id"]), int(p["block_number"])
        problems = []
        if not chain.is_approver(gate, approver, block):
            problems.append(f"{approver} did not hold APPROVER_ROLE at block {block}")
        events = [e for e in self._gate_events(chain, gate)[0] if e.trade_id == trade_id]
        if p["decision"] == "rejected":
            if events or trade_id in self._gate_events(chain, gate)[1]:
                problems.append(f"trade #{trade_id} was rejected, yet approved or settled onchain")
            return problems
        if digest != chain.approval_digest(gate, trade_id, block):
            problems.append(f"the signed digest is not the gate's approvalDigest({trade_id})")
        if p.get("tx_hash"):
            matching = [e for e in events if e.tx_hash.lower() == str(p["tx_hash"]).lower()]
            if not matching or matching[0].approver != approver or matching[0].block != block:
                problems.append(f"no TradeApproved({trade_id}, {approver}) in tx {p['tx_hash']}")
        return problems


def _submitted(entries: list[_Entry]) -> list[str]:
    """The transaction hash of every submission entry that names one."""
    return [
        tx_hash
        for e in entries
        if e.kind == "submission"
        and isinstance(tx_hash := e.payload.get("tx_hash"), str)
        and tx_hash
    ]


def _observation_job(signed: dict[str, Any]) -> tuple[str, _batch.Job]:
    """(claimed node, recovery job) of one signed observation of an observations entry."""
    observation = signed["observation"]
    digest = keccak(OBSERVATION_DOMAIN + _observation_json(observation))
    message = keccak(_EIP191_PREFIX + digest)
    return str(observation["node"]), (message, _bytes(signed["signature"]), 27)


_OBSERVATION_KEYS = frozenset(("feed", "node", "observed_at", "request_id", "value"))


def _observation_json(observation: Any) -> bytes:
    """``dump_parsed(observation)``: an observation as nodes write it, spelled out directly.

    Its five keys in sorted order, strings escaped by the encoder ``dump_parsed``
    uses and plain ints as ``int.__repr__`` writes them; any other shape is
    ``dump_parsed``'s.
    """
    if type(observation) is dict and observation.keys() == _OBSERVATION_KEYS:
        feed, node, at = observation["feed"], observation["node"], observation["observed_at"]
        request_id, value = observation["request_id"], observation["value"]
        if (
            type(feed) is str
            and type(node) is str
            and type(request_id) is str
            and type(at) is int
            and type(value) is int
        ):
            text = (
                f'{{"feed":{encode_str(feed)},"node":{encode_str(node)},"observed_at":{at},'
                f'"request_id":{encode_str(request_id)},"value":{value}}}'
            )
            return text.encode("utf-8")
    return dump_parsed(observation)


class _ReportFields(NamedTuple):
    """The fields of a report the audit compares, sliced straight from the bytes.

    The bytes are authenticated by the signatures; this only reads them (fast),
    rejecting anything that is not a well-formed Keystone report body.
    """

    don_id: int
    config_version: int
    chain_id: int
    receiver: bytes
    action_hash: bytes
    payload: bytes

    @classmethod
    def parse(cls, raw: bytes) -> _ReportFields:
        body = raw[METADATA_LENGTH:]
        if len(raw) < METADATA_LENGTH or len(body) < 5 * 32 or body[32:44] != bytes(12):
            raise EncodingError(f"report of {len(raw)} bytes is not a vouch report")
        offset = int.from_bytes(body[128:160], "big")
        length = (
            int.from_bytes(body[offset : offset + 32], "big") if offset + 32 <= len(body) else -1
        )
        payload = body[offset + 32 : offset + 32 + length]
        if length < 0 or len(payload) != length:
            raise EncodingError("report body's payload is cut short")
        return cls(
            int.from_bytes(raw[37:41], "big"),  # don_id
            int.from_bytes(raw[41:45], "big"),  # config_version
            int.from_bytes(body[0:32], "big"),  # chain_id
            body[44:64],  # receiver
            body[96:128],  # action_hash
            payload,
        )


def _settlement_problems(
    fields: _ReportFields, proposal: _Entry | None, consensus: _Entry | None
) -> list[str]:
    """A settlement report: (tradeId, price) at the consensus price, for the proposal's action."""
    if len(fields.payload) != 64:
        return ["report body does not carry a settlement payload (tradeId, price)"]
    problems = []
    price = int.from_bytes(fields.payload[32:64], "big")
    if consensus is not None and price != int(consensus.payload["value"]):
        problems.append("reported price is not the consensus value")
    if proposal is not None and "0x" + fields.action_hash.hex() != proposal.payload.get(
        "action_hash"
    ):
        problems.append("action hash differs from the proposal's")
    return problems


def _outcome_problems(
    fields: _ReportFields, execution_id: str, agreed: Sequence[_HasPayload]
) -> list[str]:
    """A feeds report (every field one logged consensus) or a message report (its hash agreed)."""
    outcomes = sorted(
        (str(e.payload.get("feed")), e.payload["mode"], e.payload["value"]) for e in agreed
    )
    try:
        feeds, modes, values = abi_decode(["string[]", "string[]", "int256[]"], fields.payload)
    except Exception:  # noqa: BLE001 - not a feeds payload: a message, attested by its hash
        digest = keccak(fields.payload)
        if [value for _, _, value in outcomes] != [int.from_bytes(digest, "big") >> 1]:
            return ["the agreed value is not the hash of the reported message"]
        if fields.action_hash != digest:
            return ["action hash is not the hash of the reported message"]
        return []
    problems = []
    if sorted(zip(feeds, modes, values, strict=True)) != outcomes:
        problems.append("reported (feed, mode, value) fields are not this execution's consensus")
    if "0x" + fields.action_hash.hex() != execution_id.lower():
        problems.append("a feeds report's action hash must be its execution id")
    return problems


def _anchor_problem(record: AnchorRecord, span: list[_Entry | None]) -> str:
    missing = [record.from_seq + i for i, e in enumerate(span) if e is None]
    if missing:
        return f"entries #{missing[0]}..#{missing[-1]} were anchored onchain but are missing from the log"
    entries = [e for e in span if e is not None]
    root = "0x" + merkle_root([leaf(e.seq, _bytes(e.entry_hash)) for e in entries]).hex()
    if root != record.root or entries[-1].entry_hash != record.head_hash:
        return f"log differs from what anchor #{record.index} committed in block {record.block} (edited after anchoring)"
    return ""


def _delivered(receipt: Mapping[str, Any]) -> bool | None:
    for log in receipt.get("logs", []):
        topics = [bytes(t) for t in log["topics"]]
        if topics and topics[0] == REPORT_PROCESSED:
            return bool(int.from_bytes(bytes(log["data"])[-32:], "big"))
    return None


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def audit(
    log: AttestationLog,
    chain: ChainReader | None = None,
    signers: SignerSets | None = None,
    *,
    forwarder: str | None = None,
    anchor: str | None = None,
    workers: int = 1,
    gate: str | None = None,
    gateway: str | None = None,
) -> AuditReport:
    """Check every entry of ``log``; chain-dependent checks are skipped when ``chain`` is None.

    Args:
        log: the attestation log.
        chain: reads DON configs, receipts, transactions and events; None audits offline.
        signers: (don_id, config_version) -> (f, signers), for offline audits.
        forwarder: also alarm on every report this forwarder processed that the log does not explain.
        anchor: also check every range anchored on this AttestationAnchor.
        gate: also alarm on every approval, settlement and refund this SettlementGate recorded
            that the log does not explain.
        gateway: also alarm on every message execution (or failed execution) this
            CrossChainGateway recorded that no logged submission explains.
        workers: processes that recover signatures (worth it from a few thousand entries on).
    """
    if chain is None and workers > 1:
        with _no_cyclic_gc():  # main's share is allocation without cycles: plan, findings
            executions = log.executions()
            if sum(n for _, _, _, n in executions) >= _batch.PARALLEL_THRESHOLD:
                return _partitioned(log, executions, signers, workers)
    return _Auditor(log.rows(), chain, signers, forwarder, anchor, workers, gate, gateway).run()


@dataclass
class _Part:
    """One worker's share of an offline audit: whole executions, read from the file by the worker.

    ``first..last`` is a contiguous seq range; an execution belongs to the part
    its first entry falls in, so ``skip`` drops entries of executions begun in
    an earlier part and ``extra`` fetches this part's entries beyond ``last``.
    """

    path: str
    first: int
    last: int
    skip: set[int] = field(default_factory=set)
    extra: list[int] = field(default_factory=list)
    signers: dict[tuple[int, int], tuple[int, list[str]]] = field(default_factory=dict)


def _partitioned(
    log: AttestationLog,
    executions: list[tuple[Any, int, int, int]],
    signers: SignerSets | None,
    workers: int,
) -> AuditReport:
    """An offline audit split by execution across processes; linkage checked where rows are read.

    Main reads only each execution's first and last seq and plans the parts; each worker reads
    its own rows from the file, runs the whole per-entry audit (hash, canonical
    form, signatures, consensus, report contents) on complete executions and
    checks the linkage of its seq range from its second row on; main checks
    each range's first row against the range before, so the linkage is checked
    once for every row and the results are exactly those of a serial audit.
    Findings travel back as plain tuples.
    """
    parts = _plan(log, executions, workers * _BUCKETS_PER_WORKER, dict(signers or {}))
    done: dict[int, list[AuditFinding]] = {}
    links: dict[int, _Link | None] = {}
    with _batch.process_pool(workers) as pool, _no_cyclic_gc():
        running = {pool.submit(_audit_part, part): i for i, part in enumerate(parts)}
        for future in as_completed(running):  # turn parts into findings while others run
            found, links[running[future]] = future.result()
            done[running[future]] = list(map(_as_finding, found))
        results = [finding for i in range(len(parts)) for finding in done[i]]
        linkage = _stitch([links[i] for i in range(len(parts))])
        if linkage:
            results = [_finding(f, linkage) for f in results]
        results.sort(key=itemgetter(0))  # nearly sorted already; stable within an entry
    return AuditReport(results=results, entries=sum(n for _, _, _, n in executions))


class _Link(NamedTuple):
    """The linkage of one part's seq range: its ends, and the problems inside it."""

    first_seq: int
    first_prev: Any  # as stored: compared as ``_linkage`` compares
    last_seq: int
    last_hash: Any
    problems: dict[int, str]  # of every row after the first


def _stitch(links: list[_Link | None]) -> dict[int, str]:
    """Every linkage problem: the parts' own, and each part's first row against the part before."""
    linkage: dict[int, str] = {}
    prev_seq, prev_hash = 0, GENESIS
    for link in links:
        if link is None:  # no rows in its range (the file changed under the audit)
            continue
        boundary = _linkage(
            [(link.first_seq, "", link.first_prev, link.last_hash)], prev_seq, prev_hash
        )
        linkage.update(boundary)
        linkage.update(link.problems)
        prev_seq, prev_hash = link.last_seq, link.last_hash
    return linkage


def _plan(
    log: AttestationLog,
    executions: list[tuple[Any, int, int, int]],
    count: int,
    signers: dict[tuple[int, int], tuple[int, list[str]]],
) -> list[_Part]:
    """``count`` parts of equal seq span; an execution belongs to the part of its first entry.

    ``executions``: (execution_id, first seq, last seq, entries) of each
    execution. Only one that spans two parts is read in full: its entries
    outside its home part move there (``skip`` and ``extra``).
    """
    low = min(first for _, first, _, _ in executions)
    high = max(last for _, _, last, _ in executions)
    width = -(-(high - low + 1) // count)
    path = str(log.path)
    parts = [
        _Part(path, start, min(start + width - 1, high), signers=signers)
        for start in range(low, high + 1, width)
    ]
    for execution_id, first, last, _ in executions:
        home = (first - low) // width
        if (last - low) // width == home:
            continue
        for seq in log.seqs_of(execution_id):
            here = (seq - low) // width
            if here != home:
                parts[here].skip.add(seq)
                parts[home].extra.append(seq)
    return parts


def _linkage(
    heads: Iterable[tuple[int, Any, Any, Any]], prev_seq: int = 0, prev_hash: Any = GENESIS
) -> dict[int, str]:
    """Linkage problems (gaps, prev_hash mismatches) by seq, from the columns that carry them.

    ``heads``: (seq, execution id, prev_hash, entry_hash) in seq order, after
    the row ``prev_seq`` whose hash is ``prev_hash`` (by default, the genesis).
    """
    problems: dict[int, list[str]] = defaultdict(list)
    for seq, _, prev, entry_hash in heads:
        if seq != prev_seq + 1:
            problems[seq].append(f"entries #{prev_seq + 1}..#{seq - 1} are missing (deleted?)")
        if prev != prev_hash:
            problems[seq].append(
                "prev_hash does not match the entry before it (deleted, inserted or reordered)"
            )
        prev_seq, prev_hash = seq, entry_hash
    return {seq: "; ".join(p) for seq, p in problems.items()}


def _audit_part(part: _Part) -> tuple[list[tuple[Any, ...]], _Link | None]:
    log = AttestationLog(part.path, readonly=True)
    try:
        span = log.rows_between(part.first, part.last)
        rows = [r for r in span if r[0] not in part.skip]
        rows += log.rows_at(part.extra)
    finally:
        log.close()
    link = None
    if span:  # rows are (seq, execution_id, kind, payload, created_at, prev_hash, entry_hash)
        tail = ((r[0], r[1], r[5], r[6]) for r in span[1:])
        problems = _linkage(tail, span[0][0], span[0][6])
        link = _Link(span[0][0], span[0][5], span[-1][0], span[-1][6], problems)
    del span
    with _no_cyclic_gc():  # every parsed payload is a container: gen-2 passes cost ~10%
        auditor = _Auditor(rows, None, part.signers)
        auditor.linkage = False
        auditor.check_all()
        found = auditor.found
        # freed before the collector is back: its first pass scans what is still alive
        del auditor, rows
    return found, link


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic collector (the audit makes no cycles; refcounting frees everything)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# AuditFinding._make without its Python frame: a worker's tuples always carry the six fields
_as_finding: Callable[[tuple[Any, ...]], AuditFinding] = partial(tuple.__new__, AuditFinding)


def _finding(fields: tuple[Any, ...], linkage: dict[int, str]) -> AuditFinding:
    """A worker's finding, failing the chain check where linkage (checked here) is broken."""
    finding = _as_finding(fields)
    problem = linkage.get(finding.seq)
    if problem is None or finding.check != "chain":
        return finding
    detail = "; ".join(filter(None, [problem, finding.detail]))
    return finding._replace(status="fail", detail=detail)
