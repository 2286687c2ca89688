"""Checks of workflows-as-code executions (``trigger``, ``capability``, ``finished``, their reports).

- ``capability``: every signed observation recovers to a DON signer of the
  report's config, is for this round and step, and signs the logged value;
  the declared aggregation recomputed from them gives the logged consensus;
  the agreed ``#call`` is the hash of the logged call and aggregations.
- a workflow ``report``: its payload decodes under the declared ABI types to
  exactly the logged values; its action hash is the trigger event's; its
  workflow id/name are the trigger's; the receiver is the one logged.
- its ``submission``: the forwarder's ``ReportProcessed`` in the receipt names
  that receiver (the generic check already matches its result to the status,
  and alarms on any ReportProcessed the log does not explain).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._aggregate import CALL_FIELD, AggregationError
from .._workflow_steps import (
    StepError,
    call_digest,
    decoded_report_values,
    step_consensus,
    trigger_action_hash,
    verified_values,
    workflow_id,
)
from ._read import _bytes, _Entry, _ReportFields
from ._types import REPORT_PROCESSED, Status

WORKFLOW_KINDS = ("trigger", "capability", "finished")


class _WorkflowChecks:
    """Mixed into the auditor: needs ``_add``, ``_earlier``, ``_later``, ``_signer_set``, ``_block_of``."""

    if TYPE_CHECKING:  # the auditor's own methods

        def _add(self, entry: _Entry, check: str, status: Status, detail: str = "") -> None: ...
        def _earlier(self, entry: _Entry, kind: str) -> _Entry | None: ...
        def _later(self, entry: _Entry, kind: str) -> _Entry | None: ...
        def _block_of(self, entry: _Entry) -> int | None: ...
        def _signer_set(
            self, forwarder: str, don_id: int, version: int, block: int | None
        ) -> tuple[int, list[str]] | None: ...

    def _trigger(self, entry: _Entry) -> None:
        p = entry.payload
        problems = []
        for key in ("workflow", "workflow_id", "owner", "handler", "module_sha256", "request_id"):
            if key not in p:
                problems.append(f"no {key}")
        if (
            not problems
            and "0x" + workflow_id(p["owner"], p["workflow"]).hex() != str(p["workflow_id"]).lower()
        ):
            problems.append("workflow_id is not derived from the owner and the workflow name")
        self._add(entry, "workflow trigger", "fail" if problems else "ok", "; ".join(problems))

    def _capability(self, entry: _Entry) -> None:
        p = entry.payload
        trigger = self._earlier(entry, "trigger")
        if trigger is None:
            self._add(entry, "capability consensus", "fail", "no trigger entry before it")
            return None
        if p.get("request_id") != trigger.payload.get("request_id"):
            return self._add(
                entry, "capability consensus", "fail", "another round than its trigger's"
            )
        report = self._later(entry, "report")
        don_id = int(trigger.payload.get("don_id", 0))
        version = int(trigger.payload.get("config_version", 0))
        config = self._signer_set(
            str(trigger.payload.get("forwarder", "")),
            don_id,
            version,
            self._block_of(report) if report is not None else None,
        )
        if config is None:
            return self._add(
                entry, "capability consensus", "skip", "no chain and no signer set given"
            )
        f, signers = config
        try:
            values = verified_values(p["request_id"], int(p["step"]), p["fields"], signers)
            call, consensus = step_consensus(values, p["aggregations"], f)
        except (StepError, AggregationError) as exc:
            self._add(entry, "capability consensus", "fail", str(exc)[:300])
            return None
        problems = []
        if call != call_digest(p["kind"], p["call"], p["aggregations"]):
            problems.append(f"the agreed {CALL_FIELD} is not the hash of the logged call")
        if consensus != p.get("consensus"):
            problems.append(
                f"recomputed consensus {consensus} is not the logged {p.get('consensus')}"
            )
        detail = "; ".join(problems) or f"{len(values[CALL_FIELD])} signed answers, f={f}"
        self._add(entry, "capability consensus", "fail" if problems else "ok", detail)
        return None

    def _finished(self, entry: _Entry) -> None:
        self._add(entry, "workflow trigger", "ok", "the callback wrote no report")

    def _workflow_report_problems(self, entry: _Entry, fields: _ReportFields) -> list[str]:
        p = entry.payload
        problems = []
        try:
            values = decoded_report_values(list(p["abi_types"]), fields.payload)
        except Exception as exc:  # noqa: BLE001 - any malformed payload is a finding
            return [f"the payload does not decode as {p['abi_types']}: {str(exc)[:120]}"]
        if values != p.get("values"):
            problems.append(
                f"the payload decodes to {values}, not the logged values {p.get('values')}"
            )
        trigger = self._earlier(entry, "trigger")
        if trigger is None:
            return [*problems, "no trigger entry before the report"]
        t = trigger.payload
        if fields.action_hash != trigger_action_hash(t["handler"], t.get("event", {})):
            problems.append("the report's action hash is not its trigger event's")
        raw = _bytes(p["raw"])
        if "0x" + raw[45:77].hex() != str(t.get("workflow_id", "")).lower():
            problems.append("the report's workflow id is not the trigger's")
        if "0x" + raw[87:107].hex() != str(t.get("owner", "")).lower():
            problems.append("the report's workflow owner is not the trigger's")
        return problems

    @staticmethod
    def _receiver_problems(
        entry: _Entry, report: _Entry | None, receipt: Mapping[str, Any]
    ) -> list[str]:
        if report is None or "abi_types" not in report.payload:
            return []
        receiver = str(report.payload.get("receiver", "")).lower()
        for log in receipt.get("logs", []):
            topics = log.get("topics") or []
            if topics and bytes(topics[0]) == REPORT_PROCESSED and len(topics) > 1:
                named = "0x" + bytes(topics[1])[-20:].hex()
                if named != receiver:
                    return [
                        f"ReportProcessed names receiver {named}, the report was for {receiver}"
                    ]
                return []
        return ["no ReportProcessed in the receipt"]
