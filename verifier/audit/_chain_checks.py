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

        A mismatch names the first entry that differs: the anchoring transaction
        carries each anchored entry's hash after its arguments, which the audit
        reads back and authenticates against the stored root. (An anchor without
        them, from an older vouch, narrows it to its range.) An edit re-hashes
        every entry after it, so every later range differs too: those are
        counted, not listed entry by entry.
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
            first = _first_difference(record, by_seq, _committed_hashes(chain, record))
            if first is not None:
                seq, detail = first
                for entry in present:
                    if entry.seq < seq:
                        self._add(entry, "anchored", "ok", f"anchor #{record.index}")
                    elif entry.seq == seq:
                        self._add(entry, "anchored", "fail", detail)
                    else:
                        after = f"after #{seq}, the first entry anchor #{record.index} disowns"
                        self._add(entry, "anchored", "skip", after)
                if seq not in by_seq:
                    self._global("anchored", detail)
            elif present:
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
        return None

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


_ANCHOR_ARGS = 4 + 4 * 32  # selector, then root, fromSeq, toSeq, headHash


def _committed_hashes(chain: ChainReader, record: AnchorRecord) -> list[str] | None:
    """The entry hashes the anchoring transaction carried, if they fold to the stored root.

    None when the transaction carries none (an older anchor), cannot be read,
    or carries hashes that do not make the root the contract stored: only
    hashes the chain itself vouches for may name an entry.
    """
    if record.tx_hash is None:
        return None
    try:
        data = chain.get_transaction_input(record.tx_hash)
    except Exception:  # noqa: BLE001 - NotImplementedError, or any RPC failure: fall back
        return None
    count = record.to_seq - record.from_seq + 1
    tail = (data or b"")[_ANCHOR_ARGS:]
    if count <= 0 or len(tail) != 32 * count:
        return None
    hashes = [tail[i * 32 : (i + 1) * 32] for i in range(count)]
    root = merkle_root([leaf(record.from_seq + i, h) for i, h in enumerate(hashes)])
    if "0x" + root.hex() != record.root.lower():
        return None
    return ["0x" + h.hex() for h in hashes]


def _first_difference(
    record: AnchorRecord, by_seq: dict[int, _Entry], committed: list[str] | None
) -> tuple[int, str] | None:
    """(seq, finding) of the first anchored entry the log lost or changed; None if unknown."""
    if committed is None:
        return None
    for offset, anchored in enumerate(committed):
        seq = record.from_seq + offset
        entry = by_seq.get(seq)
        if entry is None:
            last = seq
            while last < record.to_seq and last + 1 not in by_seq:
                last += 1
            what = f"entry #{seq} was" if last == seq else f"entries #{seq}..#{last} were"
            return seq, (
                f"{what} anchored onchain but {'is' if last == seq else 'are'} missing from the "
                f"log (anchor #{record.index}, block {record.block})"
            )
        if entry.entry_hash.lower() != anchored:
            return seq, (
                f"entry #{seq} is not what anchor #{record.index} committed in block "
                f"{record.block}: its hash {entry.entry_hash[:18]}… was {anchored[:18]}… "
                "(edited after anchoring; later entries were re-hashed from it)"
            )
    return None
