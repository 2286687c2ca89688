"""Workflows as code: CRE's programming model in Python (see docs/workflows.md).

A workflow module declares handlers (a trigger and a callback); inside a
callback, ``rt.http.fetch``, ``rt.evm.call`` and ``rt.evm.logs`` run on every
node and return the DON's consensus, aggregated per field as declared;
``rt.report(abi_types, values)`` and ``rt.evm.write(report, receiver=...,
gas_limit=...)`` deliver the result to any receiver contract.

Exports load lazily (PEP 562): a workflow module importing ``handler`` or
``median``, or `vouch secrets list` reading a store, loads only what it uses,
not the engine (web3). A new export is one line in ``_EXPORTS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CronTrigger": "._api",
    "EvmLogTrigger": "._api",
    "Handler": "._api",
    "HttpTrigger": "._api",
    "IntervalTrigger": "._api",
    "Trigger": "._api",
    "Workflow": "._api",
    "common_prefix": "._api",
    "common_suffix": "._api",
    "cron": "._api",
    "evm_log": "._api",
    "handler": "._api",
    "http_trigger": "._api",
    "identical": "._api",
    "interval": "._api",
    "median": "._api",
    "mode": "._api",
    "CronSchedule": "._cron",
    "ExecutionResult": "._engine",
    "GasLimitedDelivery": "._engine",
    "HttpLink": "._engine",
    "LocalLink": "._engine",
    "NodeLink": "._engine",
    "Target": "._engine",
    "WorkflowEngine": "._engine",
    "CapabilityError": "._errors",
    "ConsensusRefused": "._errors",
    "LimitExceeded": "._errors",
    "Nondeterminism": "._errors",
    "WorkflowDefinitionError": "._errors",
    "WorkflowError": "._errors",
    "CRE": "._limits",
    "DEFAULTS": "._limits",
    "Limits": "._limits",
    "load_workflow": "._loader",
    "module_sha256": "._loader",
    "SignRequest": "._messages",
    "StepAnswer": "._messages",
    "StepRequest": "._messages",
    "WorkflowNode": "._node",
    "action_hash": "._node",
    "workflow_id": "._node",
    "Report": "._runtime",
    "Response": "._runtime",
    "Runtime": "._runtime",
    "local_don": "._simulator",
    "simulate_module": "._simulator",
    "Aggregation": "vouch.verifier._aggregate",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - a list, built from the lazy export table


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # the static view: mypy and editors see every export
    from vouch.verifier._aggregate import (
        Aggregation as Aggregation,
    )

    from ._api import (
        CronTrigger as CronTrigger,
    )
    from ._api import (
        EvmLogTrigger as EvmLogTrigger,
    )
    from ._api import (
        Handler as Handler,
    )
    from ._api import (
        HttpTrigger as HttpTrigger,
    )
    from ._api import (
        IntervalTrigger as IntervalTrigger,
    )
    from ._api import (
        Trigger as Trigger,
    )
    from ._api import (
        Workflow as Workflow,
    )
    from ._api import (
        common_prefix as common_prefix,
    )
    from ._api import (
        common_suffix as common_suffix,
    )
    from ._api import (
        cron as cron,
    )
    from ._api import (
        evm_log as evm_log,
    )
    from ._api import (
        handler as handler,
    )
    from ._api import (
        http_trigger as http_trigger,
    )
    from ._api import (
        identical as identical,
    )
    from ._api import (
        interval as interval,
    )
    from ._api import (
        median as median,
    )
    from ._api import (
        mode as mode,
    )
    from ._cron import (
        CronSchedule as CronSchedule,
    )
    from ._engine import (
        ExecutionResult as ExecutionResult,
    )
    from ._engine import (
        GasLimitedDelivery as GasLimitedDelivery,
    )
    from ._engine import (
        HttpLink as HttpLink,
    )
    from ._engine import (
        LocalLink as LocalLink,
    )
    from ._engine import (
        NodeLink as NodeLink,
    )
    from ._engine import (
        Target as Target,
    )
    from ._engine import (
        WorkflowEngine as WorkflowEngine,
    )
    from ._errors import (
        CapabilityError as CapabilityError,
    )
    from ._errors import (
        ConsensusRefused as ConsensusRefused,
    )
    from ._errors import (
        LimitExceeded as LimitExceeded,
    )
    from ._errors import (
        Nondeterminism as Nondeterminism,
    )
    from ._errors import (
        WorkflowDefinitionError as WorkflowDefinitionError,
    )
    from ._errors import (
        WorkflowError as WorkflowError,
    )
    from ._limits import (
        CRE as CRE,
    )
    from ._limits import (
        DEFAULTS as DEFAULTS,
    )
    from ._limits import (
        Limits as Limits,
    )
    from ._loader import (
        load_workflow as load_workflow,
    )
    from ._loader import (
        module_sha256 as module_sha256,
    )
    from ._messages import (
        SignRequest as SignRequest,
    )
    from ._messages import (
        StepAnswer as StepAnswer,
    )
    from ._messages import (
        StepRequest as StepRequest,
    )
    from ._node import (
        WorkflowNode as WorkflowNode,
    )
    from ._node import (
        action_hash as action_hash,
    )
    from ._node import (
        workflow_id as workflow_id,
    )
    from ._runtime import (
        Report as Report,
    )
    from ._runtime import (
        Response as Response,
    )
    from ._runtime import (
        Runtime as Runtime,
    )
    from ._simulator import (
        local_don as local_don,
    )
    from ._simulator import (
        simulate_module as simulate_module,
    )
