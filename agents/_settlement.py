"""The settlement agent: turns a goal into a verified DvP settlement proposal."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ._loop import Agent, Tool
from ._model import ChatModel
from ._proposal import ActionProposal, FactRequest, ProposalSubmitter, SettlementParams

INSTRUCTIONS = (
    "You settle trades. Never state a price yourself: propose the trade with its price bounds "
    "and let the oracle network attest the price. Settlement is irreversible."
)


class ProposeSettlementArgs(SettlementParams):
    """Arguments of the ``propose_settlement`` tool."""

    feed: str = Field(pattern=r"^[A-Z0-9]{1,12}/[A-Z0-9]{1,12}$")
    rationale: str = ""
    trace_hash: str | None = None


class SettlementResult(BaseModel):
    """What the settlement agent reports back."""

    proposal: ActionProposal | None
    outcome: dict[str, Any] | None
    answer: str


def settlement_agent(model: ChatModel, submitter: ProposalSubmitter) -> Agent:
    """An agent with one irreversible tool, ``propose_settlement``, wired to ``submitter``."""

    async def propose(args: ProposeSettlementArgs) -> dict[str, Any]:
        params = SettlementParams(**args.model_dump(include=set(SettlementParams.model_fields)))
        proposal = ActionProposal(
            params=params,
            facts=[FactRequest(feed=args.feed)],
            rationale=args.rationale,
            trace_hash=args.trace_hash,
        )
        return await submitter.submit(proposal)

    tool = Tool(
        name="propose_settlement",
        description="Propose a delivery-versus-payment trade, settled at the DON-attested price.",
        args_model=ProposeSettlementArgs,
        fn=propose,
        irreversible=True,
        # vouch reports a failed settlement as an error of its own, so it stops the run here
        reraise=(Exception,),
    )
    return Agent("settlement-agent", model=model, tools=[tool], instructions=INSTRUCTIONS)
