"""The audit: re-verify every log entry from the log itself and the chain, trusting neither.

Per entry: the hash chain; observation signatures against the DON's onchain
signer set; the median recomputed; report signatures (exactly f+1 distinct
configured signers) and the report's contents against the consensus and the
proposal; each submission against its transaction, receipt and event; each
human decision (``hitl``) against its approver's signature and, for approvals,
the gate's EIP-712 digest, APPROVER_ROLE and TradeApproved event at that block.
The other way round: every report the forwarder processed, every approval,
settlement and refund the gate recorded, and every message execution (or
failed execution) on a CrossChainGateway must be explained by the log (else an
ALARM).

Modules: ``_types`` (findings, report, events), ``_chain`` (reading the chain),
``_read`` (reading the log and the report bytes), ``_entries`` (per-entry
checks), ``_chain_checks`` (chain-to-log checks and anchors), ``_parallel``
(the plain path and the partitioned offline path).
"""

from ._chain import ChainReader, Web3ChainReader
from ._grammar import ACCEPT, GRAMMARS, check_sequence, classify
from ._parallel import audit
from ._pins import CONTRACTS, PIN_FLAGS, TRUST_LOG_FLAG, read_manifest, resolve_pins
from ._types import (
    FROM_LOG,
    AnchorRecord,
    ApprovalEvent,
    AuditContext,
    AuditFinding,
    AuditReport,
    Check,
    CheckTally,
    ConfigEvent,
    ExecutionEvent,
    Pins,
    ReportEvent,
    TradeTerms,
)

__all__ = [
    "FROM_LOG",
    "ACCEPT",
    "AuditContext",
    "CONTRACTS",
    "Check",
    "GRAMMARS",
    "PIN_FLAGS",
    "Pins",
    "TRUST_LOG_FLAG",
    "TradeTerms",
    "check_sequence",
    "classify",
    "read_manifest",
    "resolve_pins",
    "AnchorRecord",
    "ApprovalEvent",
    "AuditFinding",
    "AuditReport",
    "ChainReader",
    "CheckTally",
    "ConfigEvent",
    "ExecutionEvent",
    "ReportEvent",
    "Web3ChainReader",
    "audit",
]
