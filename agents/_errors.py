"""Exceptions raised by agents.

The tree::

    AgentError
    ├── ToolError          a tool call failed or its arguments did not validate
    ├── ModelError         the model answered with something the loop cannot use
    └── MaxStepsExceeded   the loop hit its step limit before the agent finished
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error raised by agents."""


class ToolError(AgentError):
    """A tool call failed, or its arguments did not validate."""


class ModelError(AgentError):
    """The model answered with something the loop cannot use."""


class MaxStepsExceeded(AgentError):
    """The agent did not finish within its step limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"agent did not finish within {limit} steps; raise max_steps or simplify the goal"
        )
        self.limit = limit
