"""Workflows as code: CRE's programming model in Python (see docs/workflows.md).

A workflow module declares handlers (a trigger and a callback); inside a
callback, ``rt.http.fetch``, ``rt.evm.call`` and ``rt.evm.logs`` run on every
node and return the DON's consensus, aggregated per field as declared;
``rt.report(abi_types, values)`` and ``rt.evm.write(report, receiver=...,
gas_limit=...)`` deliver the result to any receiver contract.
"""

from __future__ import annotations

from vouch.verifier._aggregate import Aggregation

from ._api import (
    CronTrigger,
    EvmLogTrigger,
    Handler,
    HttpTrigger,
    IntervalTrigger,
    Trigger,
    Workflow,
    common_prefix,
    common_suffix,
    cron,
    evm_log,
    handler,
    http_trigger,
    identical,
    interval,
    median,
    mode,
)
from ._cron import CronSchedule
from ._engine import (
    ExecutionResult,
    GasLimitedDelivery,
    HttpLink,
    LocalLink,
    NodeLink,
    Target,
    WorkflowEngine,
)
from ._errors import (
    CapabilityError,
    ConsensusRefused,
    LimitExceeded,
    Nondeterminism,
    WorkflowDefinitionError,
    WorkflowError,
)
from ._limits import CRE, DEFAULTS, Limits
from ._loader import load_workflow, module_sha256
from ._messages import SignRequest, StepAnswer, StepRequest
from ._node import WorkflowNode, action_hash, workflow_id
from ._runtime import Report, Response, Runtime
from ._simulator import local_don, simulate_module

__all__ = [
    "CRE",
    "DEFAULTS",
    "Aggregation",
    "CapabilityError",
    "ConsensusRefused",
    "CronSchedule",
    "CronTrigger",
    "EvmLogTrigger",
    "ExecutionResult",
    "GasLimitedDelivery",
    "Handler",
    "HttpLink",
    "HttpTrigger",
    "IntervalTrigger",
    "LimitExceeded",
    "Limits",
    "LocalLink",
    "NodeLink",
    "Nondeterminism",
    "Report",
    "Response",
    "Runtime",
    "SignRequest",
    "StepAnswer",
    "StepRequest",
    "Target",
    "Trigger",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowEngine",
    "WorkflowError",
    "WorkflowNode",
    "action_hash",
    "common_prefix",
    "common_suffix",
    "cron",
    "evm_log",
    "handler",
    "http_trigger",
    "identical",
    "interval",
    "load_workflow",
    "local_don",
    "median",
    "mode",
    "module_sha256",
    "simulate_module",
    "workflow_id",
]
