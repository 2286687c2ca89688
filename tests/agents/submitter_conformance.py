"""The conformance suite every ``AttestingSubmitter`` must pass.

A subclass named ``Test...`` sets ``self.submitter`` (in an autouse fixture) and
may override the proposals: ``settles()`` must describe a trade that settles,
``refused()`` one whose bounds exclude any price the DON will attest.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from vouch._agent_settlement import (
    ActionProposal,
    AttestedResult,
    AttestingSubmitter,
    SettlementProposalArgs,
    proposal_tool,
    settlement_offline_model,
)
from vouch.agents import Agent

ONE = 10**18
GOAL = "Sell 1.5 WETH for USDC between 1,000 and 10,000 USDC per WETH within 10 minutes"


def args(min_price: int, max_price: int, amount: int = 3 * ONE // 2) -> SettlementProposalArgs:
    return SettlementProposalArgs(
        base_token="WETH",
        quote_token="USDC",
        base_amount=amount,
        min_price=min_price * ONE,
        max_price=max_price * ONE,
        deadline_seconds=600,
        feed="ETH/USD",
        rationale="conformance",
    )


class SubmitterConformance:
    """The contract: attested results, not exceptions, for every onchain outcome."""

    submitter: AttestingSubmitter

    def settles(self) -> ActionProposal:
        return args(1_000, 10_000).proposal()

    def refused(self) -> ActionProposal:
        return args(10, 20).proposal()

    def submit(self, proposal: ActionProposal) -> AttestedResult:
        return asyncio.run(self.submitter.submit(proposal))

    def check_settled(self, result: AttestedResult) -> None:
        """Hook: what the submitter's world says about a settled result (e.g. the receipt)."""

    def test_a_settlement_comes_back_attested_with_tx_hash_and_execution_id(self) -> None:
        result = self.submit(self.settles())
        assert isinstance(result, AttestedResult)
        assert result.status == "settled" and result.ok, result
        assert result.tx_hash is not None and result.tx_hash.startswith("0x")
        assert result.execution_id is not None and len(result.execution_id) == 66
        assert result.revert is None and result.error is None
        self.check_settled(result)

    def test_a_refusal_is_a_result_with_the_decoded_revert(self) -> None:
        result = self.submit(self.refused())
        assert result.status == "refused" and not result.ok
        assert result.revert is not None and result.revert.name == "PriceOutOfBounds"
        assert result.tx_hash is not None and result.execution_id is not None

    def test_the_tool_waits_and_hands_the_result_to_the_model(self) -> None:
        tool = proposal_tool(self.submitter, SettlementProposalArgs, timeout_seconds=120)
        assert tool.irreversible and tool.name == "propose_onchain"
        result = asyncio.run(
            Agent("settler", model=settlement_offline_model(), tools=[tool]).run(GOAL)
        )
        kinds = [e.kind for e in result.trace]
        assert kinds == ["model", "tool", "model"], result.trace
        observed: dict[str, Any] = json.loads(result.trace[1].data["result"])
        assert observed["status"] == "settled" and observed["tx_hash"].startswith("0x")
        assert observed["execution_id"] in result.answer  # the model saw the attested result
        self.check_settled(AttestedResult.model_validate(observed))
