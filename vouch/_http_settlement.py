"""A settlement spec with an http trigger: one verified settlement per ``POST /trigger``.

The body is a goal for the agent (the flow of the proposal trigger: plan, escrow,
the demo's desk approval, attest, settle) or an ``ActionProposal`` the caller
made itself (escrowed and attested directly; above the gate's approval
threshold the gate still refuses it until an approver has signed).
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console

from agents import ActionProposal, AgentError
from cre_adapters import CreError, HttpTrigger, HttpTriggerServer, WorkflowSpec, trigger_token

from ._demo import _bring_up, run_settlement_demo
from ._errors import VouchError
from ._settings import VouchSettings


class SettlementTriggerBody(BaseModel):
    """Exactly one of: a goal for the agent, or a ready ActionProposal."""

    model_config = ConfigDict(extra="forbid")

    goal: str | None = Field(default=None, min_length=1)
    proposal: ActionProposal | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.goal is None) == (self.proposal is None):
            raise ValueError(
                "give exactly one of goal (a sentence) or proposal (an ActionProposal)"
            )
        return self


def serve_settlements(
    settings: VouchSettings, console: Console, spec: WorkflowSpec
) -> list[dict[str, Any]]:
    """Serve the spec's http trigger until its runs are done; every outcome, failed ones included."""
    trigger = spec.trigger
    assert isinstance(trigger, HttpTrigger)
    token = trigger_token(trigger.token_file or settings.home / "workflow.token")

    async def fire(body: SettlementTriggerBody) -> dict[str, Any]:
        return await asyncio.to_thread(_settle, settings, console, body)

    server = HttpTriggerServer(
        trigger,
        token,
        SettlementTriggerBody,
        fire,
        lambda kind, data: console.print(f"{kind}: {data}"),
        failures=(CreError, VouchError, AgentError),
    )
    return asyncio.run(server.serve())


def _settle(
    settings: VouchSettings, console: Console, body: SettlementTriggerBody
) -> dict[str, Any]:
    """One settlement, in a thread of its own (the flow runs its own event loops)."""
    if body.goal is not None:
        outcome = run_settlement_demo(settings, console, body.goal)
        if outcome is None:
            raise VouchError("the run paused for an approval; decide it with `vouch runs`")
        return outcome.model_dump(mode="json")
    assert body.proposal is not None
    submitter = _bring_up(settings, console)
    return asyncio.run(submitter.submit(body.proposal))


__all__ = ["SettlementTriggerBody", "serve_settlements"]
