"""vouch.verifier: prove what a vouch DON did, from its log and the chain, trusting neither.

Installs and runs alone: it imports nothing else of vouch. Exceptions::

    VerifierError
    ├── EncodingError       bytes or fields do not fit the report format
    ├── SignatureError      a signature is malformed, high-s, or does not recover
    ├── ConsensusError      not enough observations to aggregate
    └── LogIntegrityError   the attestation log cannot be opened or is not a vouch log

The names are imported on first use (PEP 562): a process that needs one part (a node
verifying signatures, the CLI reporting an error) does not load web3 and the audit with it.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._errors import (
    CannotAudit,
    ConsensusError,
    EncodingError,
    LogIntegrityError,
    SignatureError,
    VerifierError,
)

if TYPE_CHECKING:
    from ._canonical import canonical_json, keccak
    from ._consensus import identical, median, most_frequent, quorum_size, recompute, report_verdict
    from ._hitl import APPROVER_ROLE, rejection_digest, rejection_message
    from ._html import render_html
    from ._log import AttestationLog, ChainFinding, LogEntry, chain_hash, verify_entries
    from ._merkle import leaf, merkle_proof, merkle_root, verify_proof
    from ._replay import NodeAnswer, ReplayedOutcome, ReplayResult, find_execution, replay
    from ._report import (
        METADATA_LENGTH,
        ReportBody,
        ReportMetadata,
        SettlementPayload,
        config_digest,
        decode_report,
        encode_report,
        execution_id,
        report_context,
        report_digest,
        transmission_id,
        workflow_id,
    )
    from ._signing import (
        Observation,
        SignedObservation,
        recover_observation_signer,
        recover_report_signer,
        sign_observation,
        sign_report,
    )
    from ._store import LogStore, open_log
    from .audit import (
        AnchorRecord,
        ApprovalEvent,
        AuditContext,
        AuditFinding,
        AuditReport,
        ChainReader,
        Check,
        CheckTally,
        ConfigEvent,
        ExecutionEvent,
        Pins,
        ReportEvent,
        Web3ChainReader,
        audit,
        resolve_pins,
    )

# name -> submodule it lives in
_WHERE = {
    "canonical_json": "._canonical",
    "keccak": "._canonical",
    "identical": "._consensus",
    "median": "._consensus",
    "most_frequent": "._consensus",
    "quorum_size": "._consensus",
    "recompute": "._consensus",
    "report_verdict": "._consensus",
    "APPROVER_ROLE": "._hitl",
    "rejection_digest": "._hitl",
    "rejection_message": "._hitl",
    "render_html": "._html",
    "AttestationLog": "._log",
    "ChainFinding": "._log",
    "LogEntry": "._log",
    "chain_hash": "._log",
    "verify_entries": "._log",
    "leaf": "._merkle",
    "merkle_proof": "._merkle",
    "merkle_root": "._merkle",
    "verify_proof": "._merkle",
    "NodeAnswer": "._replay",
    "ReplayedOutcome": "._replay",
    "ReplayResult": "._replay",
    "find_execution": "._replay",
    "replay": "._replay",
    "METADATA_LENGTH": "._report",
    "ReportBody": "._report",
    "ReportMetadata": "._report",
    "SettlementPayload": "._report",
    "config_digest": "._report",
    "decode_report": "._report",
    "encode_report": "._report",
    "execution_id": "._report",
    "report_context": "._report",
    "report_digest": "._report",
    "transmission_id": "._report",
    "workflow_id": "._report",
    "Observation": "._signing",
    "SignedObservation": "._signing",
    "recover_observation_signer": "._signing",
    "recover_report_signer": "._signing",
    "sign_observation": "._signing",
    "sign_report": "._signing",
    "LogStore": "._store",
    "open_log": "._store",
    "AnchorRecord": ".audit",
    "ApprovalEvent": ".audit",
    "AuditContext": ".audit",
    "AuditFinding": ".audit",
    "AuditReport": ".audit",
    "ChainReader": ".audit",
    "Check": ".audit",
    "CheckTally": ".audit",
    "ConfigEvent": ".audit",
    "ExecutionEvent": ".audit",
    "Pins": ".audit",
    "ReportEvent": ".audit",
    "Web3ChainReader": ".audit",
    "audit": ".audit",
    "resolve_pins": ".audit",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


class _Package(types.ModuleType):
    """``verifier.audit`` is the audit function, as it always was, not its subpackage.

    Loading the subpackage ``verifier.audit`` (by any import of one of its modules) makes
    the import system set the package attribute ``audit`` to that module; this keeps the
    function (``from verifier import audit``) and leaves the module in ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "audit" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "AuditContext",
    "CannotAudit",
    "Check",
    "Pins",
    "resolve_pins",
    "APPROVER_ROLE",
    "AnchorRecord",
    "ApprovalEvent",
    "ConfigEvent",
    "ExecutionEvent",
    "ReportEvent",
    "METADATA_LENGTH",
    "AttestationLog",
    "LogStore",
    "open_log",
    "AuditFinding",
    "AuditReport",
    "CheckTally",
    "ChainFinding",
    "ChainReader",
    "ConsensusError",
    "EncodingError",
    "LogEntry",
    "LogIntegrityError",
    "NodeAnswer",
    "Observation",
    "ReplayResult",
    "ReplayedOutcome",
    "ReportBody",
    "ReportMetadata",
    "SettlementPayload",
    "SignatureError",
    "SignedObservation",
    "VerifierError",
    "Web3ChainReader",
    "audit",
    "canonical_json",
    "chain_hash",
    "config_digest",
    "decode_report",
    "encode_report",
    "execution_id",
    "find_execution",
    "keccak",
    "leaf",
    "merkle_proof",
    "merkle_root",
    "median",
    "quorum_size",
    "recover_observation_signer",
    "recover_report_signer",
    "render_html",
    "replay",
    "report_context",
    "report_digest",
    "sign_observation",
    "sign_report",
    "transmission_id",
    "verify_entries",
    "verify_proof",
    "workflow_id",
    "rejection_digest",
    "rejection_message",
    "identical",
    "most_frequent",
    "recompute",
    "report_verdict",
]
