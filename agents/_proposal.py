"""What an agent proposes to do onchain, and the one interface it hands proposals to."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._trace import current_trace_hash


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
