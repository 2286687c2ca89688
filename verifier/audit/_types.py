"""What an audit is made of: its findings, its report, the chain events it reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel

from .._canonical import keccak

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


TRADE_CREATED = keccak(
    b"TradeCreated(uint256,address,address,address,uint256,address,uint256,uint256,uint64,bytes32)"
)
APPROVAL_REQUESTED = keccak(b"ApprovalRequested(uint256)")
FROM_LOG = " [trust root taken from the log, not pinned]"


class Check(StrEnum):
    """The name of every check the audit makes (a ``str``: findings compare and print as text)."""

    CHAIN = "chain"
    ANCHORED = "anchored"
    UNANCHORED = "unanchored"
    EXPLAINED = "explained by the log"
    PINNED = "pinned deployment"
    SEQUENCE = "entry sequence"
    CHAIN_ORDER = "chain order"
    READABLE = "readable"
    ACTION_HASH = "action hash"
    TRADE_TERMS = "trade terms"
    OBSERVATION_SIGNATURES = "observation signatures"
    SIGNERS_CONFIGURED = "signers configured"
    CONSENSUS_PARAMETERS = "consensus parameters"
    CONSENSUS_RECOMPUTED = "consensus recomputed"
    FEED_RULE = "feed rule"
    REPORT_SIGNATURES = "report signatures"
    REPORT_CONTENTS = "report contents"
    REPORT_BINDING = "report binding"
    TRANSACTION = "transaction"
    ONE_TX_ONE_SUBMISSION = "one submission per transaction"
    RETRY = "retry"
    APPROVER_SIGNATURE = "approver signature"
    DECISION_ONCHAIN = "decision onchain"
    FAULT_EVIDENCE = "fault evidence"
    REFUND = "refund"


@dataclass(frozen=True)
class Pins:
    """The deployment an auditor trusts, from outside the log: chain id and contract addresses.

    ``source`` says where the pins came from (a manifest file, flags, the
    operator's home). ``from_log``: the auditor explicitly accepted the
    addresses the log names (``--trust-log-addresses``); every check resting
    on them is marked so.
    """

    chain_id: int | None = None
    forwarder: str | None = None
    gate: str | None = None
    anchor: str | None = None
    gateway: str | None = None
    source: str = "flags"
    from_log: bool = False
    workflows: tuple[tuple[str, str], ...] = ()  # (workflow id, owner) pairs the deployment names
    don_id: int | None = None

    def addresses(self) -> dict[str, str | None]:
        """Role -> pinned address (None: not pinned)."""
        return {
            "forwarder": self.forwarder,
            "gate": self.gate,
            "anchor": self.anchor,
            "gateway": self.gateway,
        }


@dataclass
class AuditContext:
    """Where and how the audit ran: shown in the table, JSON and HTML headers."""

    chain_id: int | None = None
    rpc_url: str | None = None
    pins: Pins | None = None
    offline: bool = True
    unanchored: int = 0  # newest entries no anchor covers yet
    last_anchored: int | None = None  # the highest seq an anchor covers
    faulty_nodes: dict[str, list[str]] = field(default_factory=dict)  # execution -> nodes

    def unanchored_note(self, entries: int) -> str:
        """What the newest entries' state means, in a sentence."""
        if self.offline:
            return "offline: anchors not read; no entry is proven against the chain's anchors"
        if self.pins is None or not self.pins.anchor:
            return "no anchor pinned: no entry is proven against an onchain anchor"
        if not self.unanchored:
            return f"all {entries} entries are covered by onchain anchors"
        return (
            f"the newest {self.unanchored} entries (after #{self.last_anchored or 0}) are not "
            "anchored yet: until they are, the operator could rewrite them undetected"
        )

    def to_dict(self, entries: int) -> dict[str, Any]:
        """As plain JSON-able data."""
        pins = self.pins
        return {
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "offline": self.offline,
            "pins": None
            if pins is None
            else {**pins.addresses(), "chain_id": pins.chain_id, "source": pins.source},
            "trust_roots_from_log": bool(pins and pins.from_log),
            "unanchored_entries": self.unanchored,
            "last_anchored_seq": self.last_anchored,
            "unanchored_note": self.unanchored_note(entries),
            "faulty_nodes": self.faulty_nodes,
        }


class TradeTerms(BaseModel):
    """A TradeCreated event: the terms the gate escrowed a trade under."""

    trade_id: int
    base_token: str
    quote_token: str
    base_amount: int
    min_price: int
    max_price: int
    action_hash: str
    block: int


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
    tx_hash: str | None = None  # the anchoring transaction: its calldata may carry the hashes


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
    context: AuditContext = field(default_factory=AuditContext)

    def first_failing(self, count: int) -> list[int]:
        """The first ``count`` failing entries, in log order."""
        return sorted({f.seq for f in self.failures if f.seq})[:count]

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


SignerSets = Mapping[tuple[int, int], tuple[int, list[str]]]
Row = tuple[Any, ...]  # (seq, execution_id, kind, payload, created_at, prev_hash, entry_hash)
