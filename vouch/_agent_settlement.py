"""vouch's settlement domain for agents: what an agent proposes, its tools and its offline rule.

The ``agents`` package is a workflow library of its own and knows nothing of
trades or chains; this module gives it vouch's vocabulary:

- ``ActionProposal`` (a ``SettlementParams`` trade and the ``FactRequest`` the DON
  must attest), bound to the trace of the run that built it;
- ``AttestingSubmitter``/``AttestedResult``: where a proposal is carried out once
  attested (the CRE adapter) and what became of it; ``ProposalSubmitter`` is the
  untyped form;
- ``proposal_tool`` and ``settlement_agent``: the irreversible tools an agent
  proposes through;
- ``settlement_action``: the ``OfflineModel`` rule that turns a goal such as
  "Sell 1.5 WETH for USDC between 2,500 and 3,500 within 10 minutes" into a
  ``propose_settlement`` (or ``propose_onchain``) call; ``settlement_offline_model``
  is the offline model with it.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vouch.agents import (
    Agent,
    ChatModel,
    ModelReply,
    OfflineModel,
    PlanTemplate,
    Tool,
    ToolCall,
    ToolError,
    ToolSpec,
    current_trace_hash,
)


class FactRequest(BaseModel):
    """An offchain fact the action depends on, to be attested by the DON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feed: str = Field(pattern=r"^[A-Z0-9]{1,12}/[A-Z0-9]{1,12}$")
    aggregation: Literal["median"] = "median"


class SettlementParams(BaseModel):
    """A delivery-versus-payment trade: amounts and prices are integers with 18 decimals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_token: str
    quote_token: str
    base_amount: int = Field(gt=0)
    min_price: int = Field(gt=0)
    max_price: int = Field(gt=0)
    deadline_seconds: int = Field(gt=0, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _bounds(self) -> SettlementParams:
        if self.min_price > self.max_price:
            raise ValueError(f"min_price {self.min_price} is above max_price {self.max_price}")
        return self


class ActionProposal(BaseModel):
    """An agent's proposal. Nothing acts on it until the DON has attested its facts.

    Attributes:
        trace_hash: binds the reasoning that led to the proposal. Built without
            one (missing or None), it takes ``current_trace_hash()``: inside an
            executor run (or a swarm, or an ``Agent`` loop's tool call) the hash
            of every span closed so far, a prefix of the trace the run saves;
            outside any run, None. An auditor checks it with
            ``trace_prefix(store.load_trace(run_id), proposal.trace_hash)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["settlement"] = "settlement"
    params: SettlementParams
    facts: list[FactRequest] = Field(min_length=1)
    irreversible: bool = True
    rationale: str = ""
    trace_hash: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bind_trace(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("trace_hash") is None:
            return {**data, "trace_hash": current_trace_hash()}
        return data


class ProposalSubmitter(Protocol):
    """Where agents hand proposals: the CRE adapter in vouch, anything else elsewhere."""

    async def submit(self, proposal: ActionProposal) -> dict[str, Any]:
        """Carry out ``proposal`` (after attestation) and return what happened."""
        ...


AttestedStatus = Literal["settled", "refused", "rejected", "aborted", "failed", "timeout"]


class Revert(BaseModel):
    """A contract's custom error, decoded: its name and its values."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class AttestedResult(BaseModel):
    """What became of a proposal once the DON attested it and the chain answered.

    Attributes:
        status: ``settled``; ``refused`` (the receiver refused the attested report,
            see ``revert``); ``rejected`` (a contract reverted the transaction: the
            forwarder the report, or the escrow the trade; see ``revert``); ``aborted`` (nothing was submitted, e.g. no quorum);
            ``failed`` (the submitter failed); ``timeout`` (no result in time: the
            action may still complete, so it must not be proposed again blindly).
        tx_hash: the transaction that carried the report, when one was sent.
        execution_id: the DON execution that attested it (the log is keyed by it).
        report_id: the workflow's report id, when the submitter knows it.
        block_number: where ``tx_hash`` was mined.
        revert: the decoded custom error of a refusal or rejection.
        error: what went wrong, for ``aborted``, ``failed`` and ``timeout``.
        detail: anything else the submitter reports (price, signers, log entry...).
    """

    model_config = ConfigDict(frozen=True)

    status: AttestedStatus
    tx_hash: str | None = None
    execution_id: str | None = None
    report_id: str | None = None
    block_number: int | None = None
    revert: Revert | None = None
    error: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the action was carried out."""
        return self.status == "settled"


class AttestingSubmitter(ABC):
    """Where agents hand an ``ActionProposal`` and get back its attested result.

    Implementations carry the proposal out only after its facts are attested
    (vouch: the CRE adapter and the DON) and answer with what happened onchain.
    A refusal or rejection onchain is a result, not an exception; raise only when
    no result exists (the tool reports that as ``failed``).
    """

    @abstractmethod
    async def submit(self, proposal: ActionProposal) -> AttestedResult:
        """Carry out ``proposal`` once attested; return the attested result."""


class ProposalArgs(BaseModel, ABC):
    """A tool argument model that produces an ``ActionProposal``."""

    @abstractmethod
    def proposal(self) -> ActionProposal:
        """The proposal these arguments describe (its trace hash left to its default)."""


class SettlementProposalArgs(SettlementParams, ProposalArgs):
    """Arguments of a settlement proposal: the trade, its price feed and why."""

    feed: str = Field(pattern=r"^[A-Z0-9]{1,12}/[A-Z0-9]{1,12}$", description="e.g. ETH/USD")
    rationale: str = ""

    def proposal(self) -> ActionProposal:
        """A settlement ``ActionProposal`` for the DON to attest ``feed`` for."""
        params = SettlementParams(**self.model_dump(include=set(SettlementParams.model_fields)))
        return ActionProposal(
            params=params, facts=[FactRequest(feed=self.feed)], rationale=self.rationale
        )


def proposal_tool(
    submitter: AttestingSubmitter,
    args_model: type[ProposalArgs] = SettlementProposalArgs,
    *,
    name: str = "propose_onchain",
    description: str = (
        "Propose an onchain action; it is carried out only at the DON-attested facts. "
        "Answers with the attested result (status, tx hash, execution id, decoded revert)."
    ),
    timeout_seconds: float = 120.0,
    cost_usd: Decimal | None = None,
) -> Tool:
    """An irreversible tool that hands a proposal to ``submitter`` and waits for its result.

    The observation is the ``AttestedResult`` as JSON. When there is no result
    (the submitter raised, or nothing came back within ``timeout_seconds``) the
    tool raises ``ToolError`` carrying that result, which the agent loop hands
    back to the model as a ``tool_error`` observation. A timed-out submission is
    not cancelled (an onchain action half done is worse than one done late): it
    goes on while the event loop runs.
    """
    running: set[asyncio.Task[AttestedResult]] = set()

    async def propose(args: ProposalArgs) -> dict[str, Any]:
        try:
            proposal = args.proposal()
        except ValueError as exc:
            raise ToolError(f"the arguments make no valid proposal: {exc}") from exc
        task = asyncio.ensure_future(submitter.submit(proposal))
        running.add(task)
        task.add_done_callback(running.discard)
        try:
            result = await asyncio.wait_for(asyncio.shield(task), timeout_seconds)
        except TimeoutError:
            result = AttestedResult(
                status="timeout",
                error=f"no attested result within {timeout_seconds:g} s; the action may still "
                "complete: do not propose it again, check its status later",
            )
        except Exception as exc:  # no result exists; the model must hear why
            result = AttestedResult(status="failed", error=f"{type(exc).__name__}: {exc}")
        if result.status in ("aborted", "failed", "timeout"):
            raise ToolError(result.model_dump_json(exclude_defaults=True))
        return result.model_dump(mode="json", exclude_defaults=True)

    return Tool(
        name=name,
        description=description,
        args_model=args_model,
        fn=propose,
        irreversible=True,
        cost_usd=cost_usd,
    )


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


_SELL = re.compile(r"sell\s+([\d.,]+)\s+([A-Za-z]+)\s+for\s+([A-Za-z]+)", re.I)
_BOUNDS = re.compile(r"between\s+([\d.,]+)\s+and\s+([\d.,]+)", re.I)
_WITHIN = re.compile(r"within\s+(\d+)\s+minutes?", re.I)
_FEED = {"WETH": "ETH", "WBTC": "BTC"}
PROPOSERS = ("propose_settlement", "propose_onchain")  # settlement_agent's, proposal_tool's


def _units(text: str) -> int:
    return int(Decimal(text.replace(",", "")) * 10**18)


def settlement_action(goal: str, tools: list[ToolSpec]) -> ModelReply | None:
    """The offline rule for settlement goals: a proposal call, when a proposer tool is offered."""
    tool = next((t.name for t in tools if t.name in PROPOSERS), None)
    if tool is None:
        return None
    sell, bounds = _SELL.search(goal), _BOUNDS.search(goal)
    if not sell or not bounds:
        return ModelReply(
            content="I need a goal like 'Sell 1.5 WETH for USDC between 2,500 and 3,500 within 10 minutes'."
        )
    within = _WITHIN.search(goal)
    base, quote = sell.group(2).upper(), sell.group(3).upper()
    args = {
        "base_token": base,
        "quote_token": quote,
        "base_amount": _units(sell.group(1)),
        "min_price": _units(bounds.group(1)),
        "max_price": _units(bounds.group(2)),
        "deadline_seconds": int(within.group(1)) * 60 if within else 600,
        "feed": f"{_FEED.get(base, base)}/{'USD' if quote in ('USDC', 'USDT', 'DAI') else quote}",
        "rationale": f"Goal asks to sell {sell.group(1)} {base} for {quote} inside fixed price bounds; "
        "the price itself must come from the DON, not from me.",
    }
    call = ToolCall(id="call-1", name=tool, arguments=args)
    return ModelReply(tool_calls=[call])


def settlement_offline_model(templates: list[PlanTemplate] | None = None) -> OfflineModel:
    """The offline model that understands settlement goals (``settlement_action``)."""
    return OfflineModel(templates or [], actions=[settlement_action])
