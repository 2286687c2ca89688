"""Chain-to-log checks: everything the chain recorded must be explained by the log."""

from __future__ import annotations

from .._merkle import leaf, merkle_root
from ._chain import ChainReader
from ._read import _bytes, _Entry
from ._types import AnchorRecord, ApprovalEvent, AuditContext, Status


class _ChainChecks:
    """The checks that go from the chain to the log (ALARMs) and the anchors."""

    chain: ChainReader | None
    found: list[tuple[int, str, str, str, Status, str]]
    by_exec_all: dict[str, list[_Entry]]
    _gates: dict[str, tuple[list[ApprovalEvent], set[int]]]
    context: AuditContext

    def _add(self, entry: _Entry, check: str, status: Status, detail: str = "") -> None:
        raise NotImplementedError

    def _anchors(self, chain: ChainReader, anchor: str, entries: list[_Entry]) -> None:
        """Each anchored range must recompute to its onchain root and head; count what is not anchored.

        A mismatch names the first entry of the first range that differs (an
        edit re-hashes every entry after it, so every later range differs too:
        those are counted, not listed entry by entry).
        """
        by_seq = {e.seq: e for e in entries}
        covered: set[int] = set()
        mismatched: list[AnchorRecord] = []
        for record in chain.anchors(anchor):
            span = range(record.from_seq, record.to_seq + 1)
            covered.update(span)
            problem = _anchor_problem(record, [by_seq.get(seq) for seq in span])
            present = [by_seq[seq] for seq in span if seq in by_seq]
            if not problem:
                for entry in present:
                    self._add(entry, "anchored", "ok", f"anchor #{record.index}")
                continue
            mismatched.append(record)
            if len(mismatched) > 1:
                for entry in present:
                    detail = (
                        f"not provable: the log already differs from anchor #{mismatched[0].index}"
                    )
                    self._add(entry, "anchored", "skip", detail)
                continue
            where = f"#{record.from_seq}..#{record.to_seq}"
            if present:
                detail = (
                    f"{problem}: the first entry that differs is in {where}, from #{present[0].seq} "
                    "on (later entries were re-hashed from it)"
                )
                self._add(present[0], "anchored", "fail", detail)
                for entry in present[1:]:
                    self._add(entry, "anchored", "skip", f"in {where}, after #{present[0].seq}")
            else:
                self._global("anchored", f"anchor #{record.index} covers {where}: {problem}")
        if len(mismatched) > 1:
            self._global(
                "anchored",
                f"{len(mismatched) - 1} later anchors also differ from the log (re-hashed after "
                f"the first difference, under anchor #{mismatched[0].index})",
            )
        last = max(covered, default=0)
        self.context.last_anchored = last or None
        self.context.unanchored = sum(1 for e in entries if e.seq > last)
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


def _anchor_problem(record: AnchorRecord, span: list[_Entry | None]) -> str:
    missing = [record.from_seq + i for i, e in enumerate(span) if e is None]
    if missing:
        return f"entries #{missing[0]}..#{missing[-1]} were anchored onchain but are missing from the log"
    entries = [e for e in span if e is not None]
    root = "0x" + merkle_root([leaf(e.seq, _bytes(e.entry_hash)) for e in entries]).hex()
    if root != record.root or entries[-1].entry_hash != record.head_hash:
        return f"log differs from what anchor #{record.index} committed in block {record.block} (edited after anchoring)"
    return ""
