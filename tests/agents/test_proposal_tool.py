"""The built-in onchain proposal tool against an in-process submitter (conformance + failures)."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from vouch._agent_settlement import (
    ActionProposal,
    AttestedResult,
    AttestingSubmitter,
    Revert,
    SettlementProposalArgs,
    proposal_tool,
    settlement_offline_model,
)
from vouch.agents import Agent, ToolCall

from .submitter_conformance import GOAL, ONE, SubmitterConformance, args
from .test_tiers_and_tools import Scripted

PRICE = 3_000 * ONE


def _hex(*parts: object) -> str:
    return "0x" + hashlib.sha256(repr(parts).encode()).hexdigest()


class InProcessSubmitter(AttestingSubmitter):
    """Attests a fixed price and settles when it is inside the proposal's bounds."""

    def __init__(self, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.delay = delay
        self.fail = fail
        self.received: list[ActionProposal] = []
        self.finished: list[AttestedResult] = []

    async def submit(self, proposal: ActionProposal) -> AttestedResult:
        self.received.append(proposal)
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        p = proposal.params
        execution_id = _hex("exec", proposal.model_dump_json(), len(self.received))
        common = {"tx_hash": _hex("tx", execution_id), "execution_id": execution_id}
        if p.min_price <= PRICE <= p.max_price:
            result = AttestedResult(status="settled", **common, detail={"price": PRICE})
        else:
            revert = Revert(
                name="PriceOutOfBounds",
                args={"price": PRICE, "minPrice": p.min_price, "maxPrice": p.max_price},
            )
            result = AttestedResult(status="refused", revert=revert, **common)
        self.finished.append(result)
        return result


class TestInProcessSubmitter(SubmitterConformance):
    @pytest.fixture(autouse=True)
    def _submitter(self) -> None:
        self.submitter = InProcessSubmitter()


def call(min_price: int, max_price: int) -> ToolCall:
    arguments = args(min_price, max_price).model_dump()
    return ToolCall(id="c1", name="propose_onchain", arguments=arguments)


def test_the_proposal_is_built_inside_the_loop_and_bound_to_its_trace() -> None:
    submitter = InProcessSubmitter()
    asyncio.run(
        Agent("a", model=settlement_offline_model(), tools=[proposal_tool(submitter)]).run(GOAL)
    )
    [proposal] = submitter.received
    assert proposal.params.min_price == 1_000 * ONE and proposal.facts[0].feed == "ETH/USD"
    assert proposal.trace_hash is not None and proposal.trace_hash.startswith("0x")


def test_no_result_in_time_is_a_timeout_observation_and_the_submission_goes_on() -> None:
    submitter = InProcessSubmitter(delay=0.3)
    tool = proposal_tool(submitter, timeout_seconds=0.05)

    async def scenario() -> tuple[str, list[str]]:
        result = await Agent("a", model=Scripted(call(1_000, 10_000)), tools=[tool]).run("settle")
        assert not submitter.finished  # the model heard back before the chain did
        await asyncio.sleep(0.5)
        return result.answer, [e.kind for e in result.trace]

    answer, kinds = asyncio.run(scenario())
    assert kinds == ["model", "tool_error", "model"]
    assert '"status":"timeout"' in answer and "do not propose it again" in answer
    assert [r.status for r in submitter.finished] == ["settled"]  # not cancelled


def test_a_failing_submitter_is_an_observation_not_a_crash() -> None:
    submitter = InProcessSubmitter(fail=RuntimeError("only 2 of 3 nodes answered"))
    result = asyncio.run(
        Agent("a", model=Scripted(call(1_000, 10_000)), tools=[proposal_tool(submitter)]).run(
            "settle"
        )
    )
    assert [e.kind for e in result.trace] == ["model", "tool_error", "model"]
    assert '"status":"failed"' in result.answer
    assert "RuntimeError: only 2 of 3 nodes answered" in result.answer


def test_an_aborted_result_reaches_the_model_as_a_tool_error() -> None:
    class Aborting(AttestingSubmitter):
        async def submit(self, proposal: ActionProposal) -> AttestedResult:
            return AttestedResult(status="aborted", error="QuorumNotReached: 2 < 3")

    tool = proposal_tool(Aborting())
    result = asyncio.run(
        Agent("a", model=Scripted(call(1_000, 10_000)), tools=[tool]).run("settle")
    )
    assert result.trace[1].kind == "tool_error" and "QuorumNotReached: 2 < 3" in result.answer


def test_arguments_that_make_no_valid_proposal_never_reach_the_submitter() -> None:
    submitter = InProcessSubmitter()
    inverted = call(1_000, 10_000).model_copy(
        update={"arguments": {**args(1_000, 10_000).model_dump(), "min_price": 20_000 * ONE}}
    )
    result = asyncio.run(
        Agent("a", model=Scripted(inverted), tools=[proposal_tool(submitter)]).run("settle")
    )
    assert result.trace[1].kind == "invalid_arguments"
    assert "min_price" in result.answer and not submitter.received


def test_a_refusal_is_a_plain_observation_with_the_decoded_revert() -> None:
    submitter = InProcessSubmitter()
    result = asyncio.run(
        Agent("a", model=Scripted(call(10, 20)), tools=[proposal_tool(submitter)]).run("settle")
    )
    assert result.trace[1].kind == "tool"
    observed = json.loads(result.trace[1].data["result"])
    assert observed["status"] == "refused"
    assert observed["revert"] == {
        "name": "PriceOutOfBounds",
        "args": {"price": PRICE, "minPrice": 10 * ONE, "maxPrice": 20 * ONE},
    }


def test_the_argument_model_is_a_strict_schema_for_the_model() -> None:
    spec = proposal_tool(InProcessSubmitter(), SettlementProposalArgs).spec()
    assert spec.strict and spec.parameters["additionalProperties"] is False
    assert set(spec.parameters["required"]) >= {"base_amount", "min_price", "feed"}
