"""Per-entry checks of reports and their submissions.

Signatures and signers, the report's binding and contents, the transaction's
receipt and the forwarder's events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode

from .._canonical import keccak
from .._types import to_checksum
from ._core import _AuditorCore
from ._read import (
    _bytes,
    _Entry,
    _HasPayload,
    _ReportFields,
)
from ._types import (
    REPORT_PROCESSED,
    Check,
    Status,
)


class _ReportChecks(_AuditorCore):
    """The ``report`` and ``submission`` entries' checks."""

    if TYPE_CHECKING:  # _WorkflowChecks' (mixed into the same auditor)

        def _workflow_report_problems(self, entry: _Entry, fields: _ReportFields) -> list[str]: ...
        @staticmethod
        def _receiver_problems(
            entry: _Entry, report: _Entry | None, receipt: Mapping[str, Any]
        ) -> list[str]: ...

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
            signers = [a for a in recovered if isinstance(a, bytes)]
            self._report_signers(entry, signers, config)
            self._report_binding(entry, raw, fields, signers)
        self._report_contents(entry, fields)

    def _report_binding(
        self, entry: _Entry, raw: bytes, fields: _ReportFields, signers: list[bytes]
    ) -> None:
        """The raw report's identity fields are the entry's, its DON's and the pinned deployment's."""
        p, problems = entry.payload, []
        if "0x" + raw[1:33].hex() != entry.execution_id.lower():
            problems.append(
                f"the report's execution id 0x{raw[1:33].hex()[:16]}… is not the entry's "
                f"{entry.execution_id[:18]}…"
            )
        for key, value in (("don_id", fields.don_id), ("config_version", fields.config_version)):
            if key in p and p[key] != value:
                problems.append(f"logged {key} {p[key]!r} is not the report's {value}")
        if self.pins.don_id is not None and fields.don_id != self.pins.don_id:
            problems.append(
                f"the report's DON {fields.don_id} is not the pinned DON {self.pins.don_id}"
            )
        workflow = ("0x" + raw[45:77].hex(), "0x" + raw[87:107].hex())
        pinned = {(w.lower(), o.lower()) for w, o in self.pins.workflows}
        log_only = _log_only_identity(raw, fields)
        if pinned and workflow not in pinned and not log_only:
            problems.append(
                f"workflow {workflow[0][:18]}… of owner {workflow[1]} is not a pinned workflow"
                + (
                    " (nor a log-only one: receiver and owner zero, id keccak256 of its name)"
                    if fields.receiver == bytes(20)
                    else ""
                )
            )
        logged = [str(s).lower() for s in p.get("signers", [])]
        if "signers" in p and logged != ["0x" + s.hex() for s in signers]:
            problems.append("the logged signers are not the signers the signatures recover to")
        status: Status = "fail" if problems else "ok"
        detail = "; ".join(problems)
        if not problems and log_only and workflow not in pinned:
            detail = f"log-only workflow {log_only!r}: no contract acts on it"
        self._add(entry, Check.REPORT_BINDING, status, detail)

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
        return None

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
        if "abi_types" in p:  # a workflow's report to any receiver: decoded by its declared types
            problems += self._workflow_report_problems(entry, fields)
        elif proposal is not None or len(fields.payload) == 64:  # (tradeId, price)
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
        return None

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
        args = None if self.chain is None else self.chain.get_report_args(p["tx_hash"])
        if report is None or args is None or args[1] != _bytes(report.payload["raw"]):
            problems.append("the transaction did not carry this execution's logged report")
        elif args[2] != _bytes(report.payload["context"]) or ["0x" + s.hex() for s in args[3]] != [
            str(s).lower() for s in report.payload["signatures"]
        ]:
            problems.append(
                f"the report context or signatures in the transaction are not those logged in #{report.seq}"
            )
        problems += self._forwarder_problems(entry, receipt)
        problems += self._receiver_problems(entry, report, receipt)
        delivered = _delivered(receipt, self.pins.forwarder)
        if delivered is None or delivered != (p["status"] in ("settled", "delivered")):
            problems.append(
                f"ReportProcessed result {delivered} does not match status {p['status']!r}"
            )
        return problems

    def _forwarder_problems(self, entry: _Entry, receipt: Mapping[str, Any]) -> list[str]:
        """The transaction went to the pinned forwarder, whose ReportProcessed names this execution."""
        problems = []
        forwarder = self.pins.forwarder or str(entry.payload.get("forwarder") or "")
        to = str(receipt.get("to") or "")
        if to and forwarder and to.lower() != forwarder.lower():
            problems.append(f"the transaction went to {to}, not the pinned forwarder {forwarder}")
        events = [
            log
            for log in receipt.get("logs", [])
            if log["topics"] and bytes(log["topics"][0]) == REPORT_PROCESSED
        ]
        if forwarder and any(
            str(log.get("address", forwarder)).lower() != forwarder.lower() for log in events
        ):
            problems.append(f"a ReportProcessed in the receipt was not emitted by {forwarder}")
        for log in events:
            if (
                len(log["topics"]) > 2
                and any(bytes(log["topics"][2]))
                and "0x" + bytes(log["topics"][2]).hex() != entry.execution_id.lower()
            ):
                problems.append("the receipt's ReportProcessed names another execution id")
        block, index = int(receipt["blockNumber"]), int(receipt.get("transactionIndex", 0))
        self._mined.append(
            (entry.seq, entry.execution_id, block, index, str(receipt.get("from", "")))
        )
        return problems


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


def _delivered(receipt: Mapping[str, Any], forwarder: str | None = None) -> bool | None:
    for log in receipt.get("logs", []):
        topics = [bytes(t) for t in log["topics"]]
        if forwarder and str(log.get("address", forwarder)).lower() != forwarder.lower():
            continue
        if topics and topics[0] == REPORT_PROCESSED:
            return bool(int.from_bytes(bytes(log["data"])[-32:], "big"))
    return None


def _log_only_identity(raw: bytes, fields: _ReportFields) -> str | None:
    """A log-only workflow's name when the report carries that identity, else None.

    A report no contract receives (receiver zero) of a workflow no one owns
    onchain (owner zero) is bound by its name alone: its workflow id must be
    keccak256 of the name the metadata carries (``verifier.workflow_id``), so
    no pinned workflow's id can be passed off as one.
    """
    if fields.receiver != bytes(20) or raw[87:107] != bytes(20):
        return None
    name = raw[77:87].rstrip(b"\x00")
    if not name or keccak(name) != raw[45:77]:
        return None
    return name.decode("latin-1")
