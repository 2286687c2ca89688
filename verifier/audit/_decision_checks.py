"""Per-entry checks of decisions and settlement.

Proposals (action hash, trade terms), human decisions against the gate's events,
refunds, and which trades need approvals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _batch
from .._canonical import dump_parsed, keccak
from .._hitl import (
    TRADE_REFUNDED,
    rejection_digest,
)
from .._types import to_checksum
from ._chain import ChainReader
from ._core import _AuditorCore
from ._read import (
    _bytes,
    _Entry,
)
from ._types import (
    ApprovalEvent,
    Check,
    TradeTerms,
)

ACTION_HASH_EXCLUDES = frozenset(("rationale", "trace_hash"))  # see docs/internals.md


class _DecisionChecks(_AuditorCore):
    """The ``proposal``, ``hitl`` and ``refund`` entries' checks."""

    if TYPE_CHECKING:  # _ChainChecks' (mixed into the same auditor)

        def _gate_events(
            self, chain: ChainReader, gate: str
        ) -> tuple[list[ApprovalEvent], set[int]]: ...

    def _proposal(self, entry: _Entry) -> None:
        """The action hash recomputes from the logged proposal; the gate escrowed exactly its terms."""
        p = entry.payload
        proposal = p.get("proposal")
        if not isinstance(proposal, dict):
            return self._add(entry, Check.ACTION_HASH, "fail", "no proposal logged")
        body = {k: v for k, v in proposal.items() if k not in ACTION_HASH_EXCLUDES}
        recomputed = "0x" + keccak(dump_parsed(body)).hex()  # parsed: float-free already
        if recomputed != str(p.get("action_hash", "")).lower():
            detail = f"the action hash recomputes to {recomputed[:18]}…, the log says {str(p.get('action_hash'))[:18]}…"
            return self._add(entry, Check.ACTION_HASH, "fail", detail)
        self._add(entry, Check.ACTION_HASH, "ok", f"{recomputed[:18]}… recomputed")
        gate = self.pins.gate or (str(p.get("gate")) if self.pins.from_log else None)
        if self.chain is None or not gate:
            why = "no chain to check against" if self.chain is None else "no gate pinned"
            return self._add(entry, Check.TRADE_TERMS, "skip", why)
        try:
            created = self._trades(gate).get(int(p["trade_id"]))
        except NotImplementedError:
            detail = "this chain reader reads no trades"
            return self._add(entry, Check.TRADE_TERMS, "skip", detail)
        if created is None:
            detail = f"the gate {gate} never created trade #{p['trade_id']}"
            return self._add(entry, Check.TRADE_TERMS, "fail", detail)
        params = proposal.get("params") or {}
        problems = [
            f"{name} {params.get(name)!r} is not the gate's {value}"
            for name, value in (
                ("base_amount", created.base_amount),
                ("min_price", created.min_price),
                ("max_price", created.max_price),
            )
            if params.get(name) != value
        ]
        if created.action_hash != recomputed:
            problems.append(f"the gate escrowed trade #{created.trade_id} for another action hash")
        detail = (
            "; ".join(problems)
            or f"trade #{created.trade_id} created in block {created.block} with these terms"
        )
        self._add(entry, Check.TRADE_TERMS, "fail" if problems else "ok", detail)
        return None

    def _refund_entry(self, entry: _Entry) -> None:
        """A refund: of this execution's trade, never settled, and the gate's TradeRefunded in its tx."""
        p, problems = entry.payload, []
        trade_id = int(p["trade_id"])
        proposal = self._earlier(entry, "proposal")
        if proposal is None or int(proposal.payload.get("trade_id", -1)) != trade_id:
            problems.append(f"trade #{trade_id} is not this execution's proposed trade")
        settled = [
            e.seq
            for e in self.by_exec_all[entry.execution_id]
            if e.kind == "submission" and e.payload.get("status") in ("settled", "delivered")
        ]
        if settled:
            problems.append(f"the execution settled in #{settled[0]}, yet logs a refund")
        if self.chain is None:
            detail = "; ".join(problems) or "no chain to check the refund against"
            return self._add(entry, Check.REFUND, "fail" if problems else "skip", detail)
        gate = self.pins.gate or str(p.get("gate"))
        receipt = self.chain.get_receipt(str(p["tx_hash"]))
        refunded = [
            log
            for log in (receipt or {}).get("logs", [])
            if log["topics"]
            and bytes(log["topics"][0]) == TRADE_REFUNDED
            and str(log.get("address", gate)).lower() == gate.lower()
            and int.from_bytes(bytes(log["topics"][1]), "big") == trade_id
        ]
        if not refunded:
            problems.append(
                f"tx {str(p['tx_hash'])[:18]}… has no TradeRefunded({trade_id}) from {gate}"
            )
        detail = "; ".join(problems) or f"trade #{trade_id} refunded by the gate"
        self._add(entry, Check.REFUND, "fail" if problems else "ok", detail)
        return None

    def _trades(self, gate: str) -> dict[int, TradeTerms]:
        if gate.lower() not in self._trade_terms:
            chain = self.chain
            assert chain is not None
            self._trade_terms[gate.lower()] = self._read_chain("gate", gate, chain.trades_created)
        return self._trade_terms[gate.lower()]

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
        return None

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

    def _approvals_required(self) -> set[int] | None:
        gate = self.pins.gate
        if self.chain is None or not gate:
            return None
        try:
            return self._read_chain("gate", gate, self.chain.approvals_requested)
        except NotImplementedError:
            return None
