"""vouch.verifier: prove what a vouch DON did, from its log and the chain, trusting neither.

Installs and runs alone: it imports nothing else of vouch. Exceptions::

    VerifierError
    ├── EncodingError       bytes or fields do not fit the report format
    ├── SignatureError      a signature is malformed, high-s, or does not recover
    ├── ConsensusError      not enough observations to aggregate
    └── LogIntegrityError   the attestation log cannot be opened or is not a vouch log
"""

from ._canonical import canonical_json, keccak
from ._consensus import identical, median, most_frequent, quorum_size, recompute, report_verdict
from ._errors import (
    CannotAudit,
    ConsensusError,
    EncodingError,
    LogIntegrityError,
    SignatureError,
    VerifierError,
)
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
