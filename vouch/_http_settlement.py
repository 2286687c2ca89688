"""A settlement spec with an http trigger: one verified settlement per ``POST /trigger``.

The body is a goal for the agent (the flow of the proposal trigger: plan, escrow,
the demo's desk approval, attest, settle) or an ``ActionProposal`` the caller
made itself (escrowed and attested directly). A proposal above the gate's
approval threshold is refused before anything is escrowed (422, not a firing):
it needs a person's signed approval, which only a paused run can ask for.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console

from vouch.agents import AgentError
from vouch.cre_adapters import (
    ConfigError,
    CreError,
    HttpTrigger,
    HttpTriggerServer,
    WorkflowSpec,
    trigger_token,
)
from vouch.cre_adapters.evm import contract

from ._agent_settlement import ActionProposal
from ._demo import _bring_up, run_settlement_demo
from ._errors import VouchError
from ._settings import VouchSettings
from ._settlement import ChainSubmitter

PRICE_UNIT = 10**18


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
    _refuse_above_threshold(submitter, body.proposal)
    return asyncio.run(submitter.submit(body.proposal))


def _refuse_above_threshold(submitter: ChainSubmitter, proposal: ActionProposal) -> None:
    """Refuse, before escrowing, a trade the gate would only settle with an approver's signature.

    Raises:
        ConfigError: a leg (the base amount, or the most the quote leg escrows) is
            above its token's approval threshold on the gate.
    """
    p, deployment = proposal.params, submitter.deployment
    gate = contract(
        submitter.deployer.w3,
        submitter.artifacts,
        "SettlementGate",
        deployment.address("SettlementGate"),
    )
    max_quote = -(-p.base_amount * p.max_price // PRICE_UNIT)  # rounded up, as the gate does
    for token, amount in ((p.base_token, p.base_amount), (p.quote_token, max_quote)):
        if token not in deployment.contracts:
            continue  # the escrow names the unknown token
        threshold = int(gate.functions.getApprovalThreshold(deployment.address(token)).call())
        if threshold and amount > threshold:
            raise ConfigError(
                f"the proposal moves {amount} {token} (wei), above the gate's approval "
                f"threshold of {threshold}: it needs a person's approval, which a proposal "
                "body cannot ask for; run it as a goal with `vouch demo settlement --goal ... "
                "--no-approve` and decide it with `vouch runs approve RUN`"
            )


__all__ = ["SettlementTriggerBody", "serve_settlements"]
