"""Exceptions raised by agents.

The tree::

    AgentError
    ├── ToolError            a tool call failed or its arguments did not validate
    │   └── RepairFailed     the model kept sending invalid arguments after its repair attempts
    ├── ModelError           the model answered with something the loop cannot use
    │   └── ModelUnavailable the endpoint did not answer (timeouts, 429/5xx, connection) after retries
    ├── MaxStepsExceeded     the loop hit its step limit before the agent finished
    ├── BudgetExceeded       a run spent more USD or tokens than its budget allows
    ├── ModelConfigError     model settings are incomplete or unsafe (missing key, open secret file)
    └── VectorStoreError     a vector store cannot store or recall (dimension mismatch, bad filter)
"""

from __future__ import annotations

from decimal import Decimal


class AgentError(Exception):
    """Root of every error raised by agents."""


class ToolError(AgentError):
    """A tool call failed, or its arguments did not validate."""


class RepairFailed(ToolError):
    """The model sent invalid tool arguments more often than its repair attempts allow."""

    def __init__(self, tool: str, attempts: int, last_error: str) -> None:
        super().__init__(
            f"model sent invalid arguments for {tool!r} {attempts} times in a row; "
            f"last error: {last_error}. Use a stronger model tier or simplify the tool's arguments"
        )
        self.tool = tool
        self.attempts = attempts
        self.last_error = last_error


class ModelError(AgentError):
    """The model answered with something the loop cannot use."""


class ModelUnavailable(ModelError):
    """The model endpoint failed on every attempt (timeout, rate limit, server error, connection)."""

    def __init__(self, model: str, base_url: str, attempts: int, reason: str) -> None:
        super().__init__(
            f"model {model!r} at {base_url} failed after {attempts} attempt(s): {reason}; "
            "check the endpoint is up, the key and the model name, or raise the timeout/retries"
        )
        self.model = model
        self.base_url = base_url
        self.attempts = attempts
        self.reason = reason


class MaxStepsExceeded(AgentError):
    """The agent did not finish within its step limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"agent did not finish within {limit} steps; raise max_steps or simplify the goal"
        )
        self.limit = limit


class BudgetExceeded(AgentError):
    """A run went over its budget; it stops at the call that crossed the line.

    Attributes:
        run_id: the run that stopped.
        spent_usd: USD spent including the call that crossed the budget.
        budget_usd: the USD budget, or None if only tokens were limited.
        spent_tokens: tokens spent including that call.
        budget_tokens: the token budget, or None if only USD was limited.
    """

    def __init__(
        self,
        run_id: str,
        spent_usd: Decimal,
        budget_usd: Decimal | None,
        spent_tokens: int,
        budget_tokens: int | None,
    ) -> None:
        over = []
        if budget_usd is not None and spent_usd > budget_usd:
            over.append(f"USD {spent_usd} > budget {budget_usd}")
        if budget_tokens is not None and spent_tokens > budget_tokens:
            over.append(f"tokens {spent_tokens} > budget {budget_tokens}")
        super().__init__(
            f"run {run_id!r} went over budget ({'; '.join(over)}); "
            "raise the budget, use the small tier, or shorten the goal"
        )
        self.run_id = run_id
        self.spent_usd = spent_usd
        self.budget_usd = budget_usd
        self.spent_tokens = spent_tokens
        self.budget_tokens = budget_tokens


class ModelConfigError(AgentError):
    """Model settings are incomplete or unsafe."""


class VectorStoreError(AgentError):
    """A vector store cannot store or recall what was asked."""
