"""Errors of workflows as code (all under ``cre_adapters.CreError``).

The tree::

    CreError
    └── WorkflowError              a workflow cannot run or its execution failed
        ├── WorkflowDefinitionError  the module, a handler, trigger or call is malformed
        ├── CapabilityError          a capability failed on a node (HTTP, EVM), named
        ├── LimitExceeded            a CRE production quota was breached (``limit`` names it)
        ├── Nondeterminism           nodes' callbacks made different calls or reports (named)
        └── ConsensusRefused         a field's values do not meet its aggregation (nodes named)
"""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import CreError


class WorkflowError(CreError):
    """A workflow cannot run, or one of its executions failed."""


class WorkflowDefinitionError(WorkflowError):
    """The workflow module, a handler, a trigger or a capability call is malformed."""


class CapabilityError(WorkflowError):
    """A capability (HTTP fetch, EVM call or logs) failed on a node."""


class LimitExceeded(WorkflowError):
    """A CRE production quota was breached: ``limit`` is its name, ``value`` its value."""

    def __init__(self, limit: str, value: int | float, actual: int | float, what: str) -> None:
        super().__init__(f"{limit} exceeded: {what} is {actual}, the limit is {value}")
        self.limit = limit
        self.value = value
        self.actual = actual

    @classmethod
    def from_message(cls, message: str) -> LimitExceeded:
        """The breach as the coordinator reports it: the nodes' messages, the quota's name kept."""
        import re

        found = re.search(
            r"(PerWorkflow\.[A-Za-z.]+) exceeded: .*? is ([0-9.]+), the limit is ([0-9.]+)", message
        )
        exc = cls.__new__(cls)
        WorkflowError.__init__(exc, message)
        exc.limit = found.group(1) if found else "unknown"
        exc.value = float(found.group(3)) if found else 0
        exc.actual = float(found.group(2)) if found else 0
        return exc


class Nondeterminism(WorkflowError):
    """Nodes ran the same callback on the same consensus results and did different things."""

    def __init__(self, message: str, nodes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.nodes = list(nodes)


class ConsensusRefused(WorkflowError):
    """A field's signed values do not meet its aggregation's rule; ``nodes`` are the odd ones."""

    def __init__(self, message: str, nodes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.nodes = list(nodes)
