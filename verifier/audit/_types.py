"""What an audit is made of: its findings, its report, the chain events it reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
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
