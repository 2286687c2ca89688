"""CRE's published production quotas (docs.chain.link/cre/service-quotas), enforced by ``--limits``.

Each quota keeps CRE's key as its name; a breach raises ``LimitExceeded``
naming it and its value. Without ``--limits`` only vouch's own safety bounds
apply (``DEFAULTS``): they are looser, never absent.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

KB = 1024


@dataclass(frozen=True)
class Limits:
    """The bounds one execution runs under (sizes in bytes, times in seconds)."""

    execution_timeout: float  # PerWorkflow.ExecutionTimeout
    execution_response: int  # PerWorkflow.ExecutionResponseLimit
    capability_call_timeout: float  # PerWorkflow.CapabilityCallTimeout
    http_calls: int  # PerWorkflow.HTTPAction.CallLimit
    http_response_size: int  # PerWorkflow.HTTPAction.ResponseSizeLimit
    http_request_size: int  # PerWorkflow.HTTPAction.RequestSizeLimit
    http_timeout: float  # PerWorkflow.HTTPAction.ConnectionTimeout
    evm_calls: int  # PerWorkflow.ChainRead.CallLimit
    log_query_blocks: int  # PerWorkflow.ChainRead.LogQueryBlockLimit
    evm_payload_size: int  # PerWorkflow.ChainRead.PayloadSizeLimit
    report_size: int  # PerWorkflow.ChainWrite.ReportSizeLimit
    gas_limit: int  # PerWorkflow.ChainWrite.EVM.TransactionGasLimit

    def table(self) -> list[tuple[str, str]]:
        """(CRE quota key, value as text) of every bound, in declaration order."""
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            unit = " s" if isinstance(value, float) else ""
            rows.append((NAMES[f.name], f"{value:g}{unit}" if unit else f"{value:,}"))
        return rows


NAMES = {
    "execution_timeout": "PerWorkflow.ExecutionTimeout",
    "execution_response": "PerWorkflow.ExecutionResponseLimit",
    "capability_call_timeout": "PerWorkflow.CapabilityCallTimeout",
    "http_calls": "PerWorkflow.HTTPAction.CallLimit",
    "http_response_size": "PerWorkflow.HTTPAction.ResponseSizeLimit",
    "http_request_size": "PerWorkflow.HTTPAction.RequestSizeLimit",
    "http_timeout": "PerWorkflow.HTTPAction.ConnectionTimeout",
    "evm_calls": "PerWorkflow.ChainRead.CallLimit",
    "log_query_blocks": "PerWorkflow.ChainRead.LogQueryBlockLimit",
    "evm_payload_size": "PerWorkflow.ChainRead.PayloadSizeLimit",
    "report_size": "PerWorkflow.ChainWrite.ReportSizeLimit",
    "gas_limit": "PerWorkflow.ChainWrite.EVM.TransactionGasLimit",
}

CRE = Limits(
    execution_timeout=300.0,
    execution_response=100 * KB,
    capability_call_timeout=180.0,
    http_calls=5,
    http_response_size=100 * KB,
    http_request_size=10 * KB,
    http_timeout=10.0,
    evm_calls=10,
    log_query_blocks=100,
    evm_payload_size=5 * KB,
    report_size=5 * KB,
    gas_limit=5_000_000,
)
DEFAULTS = Limits(
    execution_timeout=600.0,
    execution_response=1024 * KB,
    capability_call_timeout=180.0,
    http_calls=100,
    http_response_size=10 * 1024 * KB,
    http_request_size=1024 * KB,
    http_timeout=30.0,
    evm_calls=100,
    log_query_blocks=10_000,
    evm_payload_size=1024 * KB,
    report_size=64 * KB,
    gas_limit=30_000_000,
)


def by_name(name: str) -> Limits:
    """``"cre"`` (CRE's production quotas) or ``"default"`` (vouch's looser bounds)."""
    return CRE if name == "cre" else DEFAULTS
