"""The auditor: every per-entry check family (mixins) run over the log, then the whole-log checks.

The families: `_consensus_checks` (observations, consensus), `_report_checks` (reports,
submissions), `_decision_checks` (proposals, decisions, refunds), `_workflows`, and
`_chain_checks` (chain to log); their shared state and helpers are in `_core`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter

from .. import _batch
from .._batch import Recoverer
from ._chain_checks import _ChainChecks
from ._consensus_checks import _ConsensusChecks
from ._decision_checks import _DecisionChecks
from ._grammar import check_sequence
from ._read import (
    _Entry,
    _linkage,
    _read,
    _submitted,
)
from ._report_checks import _ReportChecks
from ._types import (
    AuditFinding,
    AuditReport,
    Check,
    Status,
)
from ._workflows import _WorkflowChecks

KNOWN_KINDS = frozenset(
    (
        "proposal",
        "hitl",
        "observations",
        "consensus",
        "skipped",
        "report",
        "submission",
        "aborted",
        "retry",
        "refund",
        "trigger",
        "capability",
        "finished",
    )
)


class _Auditor(_ConsensusChecks, _ReportChecks, _DecisionChecks, _ChainChecks, _WorkflowChecks):
    """Every check of an audit: the check families are mixins; this runs them over the log."""

    def run(self) -> AuditReport:
        self.check_all()
        self.found.sort(key=itemgetter(0))  # in log order, as the partitioned path's
        found = list(map(AuditFinding._make, self.found))
        return AuditReport(results=found, entries=len(self.entries), context=self.context)

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
            "proposal": self._proposal,
            "refund": self._refund_entry,
            "trigger": self._trigger,
            "capability": self._capability,
            "finished": self._finished,
        }
        found, guarded = self.found.append, self._guarded
        pinned = self.pins.chain_id is not None or any(self.pins.addresses().values())
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
            elif kind not in KNOWN_KINDS:
                detail = f"unknown entry kind {kind[:40]!r}: no check applies to it"
                found((seq, entry.execution_id, kind, Check.READABLE, "fail", detail))
            if pinned:
                guarded(entry, self._pinned)
        self._whole_log()
        if self.chain is not None and self.anchor:
            self._anchors(self.chain, self.anchor, entries)
        if self.chain is not None and self.forwarder:
            self._unexplained(self.chain, self.forwarder)
        if self.chain is not None and self.gate:
            self._unexplained_approvals(self.chain, self.gate)
            self._unexplained_gate_events(self.chain, self.gate)
        if self.chain is not None and self.gateway:
            self._unexplained_executions(self.chain, self.gateway)

    def _whole_log(self) -> None:
        """Checks over the whole log: each execution's sequence, one transaction per submission, order."""
        required = self._approvals_required()
        for entries in self.by_exec_all.values():
            try:
                approval = None
                if required is not None:
                    trade = next(
                        (e.payload.get("trade_id") for e in entries if e.kind == "proposal"), None
                    )
                    approval = None if trade is None else int(trade) in required
                kind, problems = check_sequence(entries, approval)
            except Exception as exc:  # noqa: BLE001 - any input: a finding, never a crash
                kind, problems = "?", [(entries[0].seq, f"unreadable: {type(exc).__name__}: {exc}")]
            for seq, problem in problems:
                self._add(self.by_seq[seq], Check.SEQUENCE, "fail", problem)
            if not problems:
                self._add(
                    entries[-1], Check.SEQUENCE, "ok", f"{kind}: {len(entries)} entries in order"
                )
        self._one_tx_per_submission()
        self._chain_order()

    def _one_tx_per_submission(self) -> None:
        """Collect each mined submission; check them here unless a partitioned audit does it in main."""
        for entry in self.entries:
            tx = entry.payload.get("tx_hash") if entry.kind == "submission" else None
            if isinstance(tx, str) and tx:
                recovered = bool(entry.payload.get("recovered"))
                self.submitted.append((entry.seq, entry.execution_id, tx.lower(), recovered))
        if self.linkage:  # a whole log here (a part's are checked together in main)
            self.found += duplicate_txs(self.submitted)

    def _chain_order(self) -> None:
        """Log order must not contradict chain order: within an execution, and per sending account."""
        last_of: dict[str, tuple[int, int, int]] = {}
        for seq, execution_id, block, index, sender in self._mined:
            for key in (execution_id, "from:" + sender.lower() if sender else ""):
                if not key:
                    continue
                before = last_of.get(key)
                if before is not None and (block, index) < before[:2]:
                    who = "its execution" if key == execution_id else f"sender {sender}"
                    detail = (
                        f"mined in block {block} (tx {index}), before #{before[2]} of {who} "
                        f"(block {before[0]}), yet logged after it"
                    )
                    self._add(self.by_seq[seq], Check.CHAIN_ORDER, "fail", detail)
                last_of[key] = max(before or (0, 0, 0), (block, index, seq))

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


def duplicate_txs(
    submitted: Sequence[tuple[int, str, str, bool]],
) -> list[tuple[int, str, str, str, Status, str]]:
    """One mined transaction backs one submission.

    ``submitted``: (seq, execution id, lower-case tx hash, recovered) in log
    order. The one exception: a ``recovered`` submission (a resumed run logging
    the transaction its crashed run mined) of the same execution.
    """
    first: dict[str, tuple[int, str]] = {}
    found: list[tuple[int, str, str, str, Status, str]] = []
    for seq, execution_id, tx, recovered in sorted(submitted):
        earlier = first.setdefault(tx, (seq, execution_id))
        if earlier[0] == seq or (earlier[1] == execution_id and recovered):
            continue
        detail = (
            f"tx {tx[:18]}… already backs submission #{earlier[0]} (execution {earlier[1][:18]}…)"
        )
        found.append((seq, execution_id, "submission", Check.ONE_TX_ONE_SUBMISSION, "fail", detail))
    return found
