"""vouch's AttestingSubmitter passes the conformance suite on the real anvil and DON."""

from __future__ import annotations

import asyncio

import pytest

from tests.agents.submitter_conformance import SubmitterConformance, args
from vouch._agent_settlement import ActionProposal, proposal_tool, settlement_offline_model
from vouch._submitter import AttestedChainSubmitter
from vouch.agents import Agent
from vouch.verifier import AttestationLog

from .helpers import submitter

pytestmark = pytest.mark.integration

SETTLED = 3


class TestAttestedChainSubmitter(SubmitterConformance):
    @pytest.fixture(autouse=True)
    def _submitter(self, evm, log: AttestationLog) -> None:
        self.env, self.log = evm, log
        self.submitter = AttestedChainSubmitter(submitter(evm, log))

    def check_settled(self, result) -> None:  # type: ignore[no-untyped-def]
        receipt = self.env.w3.eth.get_transaction_receipt(result.tx_hash)
        assert receipt["status"] == 1 and receipt["blockNumber"] == result.block_number
        kinds = [e.kind for e in self.log.by_execution(result.execution_id)]
        assert kinds == ["proposal", "observations", "consensus", "report", "submission"]
        gate = self.env.contract("SettlementGate")
        trade = gate.functions.getTrade(result.detail["trade_id"]).call()
        assert trade[-1] == SETTLED
        assert set(result.detail["signers"]) <= set(self.env.don.signers)


def test_two_nodes_down_is_an_aborted_observation_and_nothing_settles(
    evm, log: AttestationLog
) -> None:
    tool = proposal_tool(AttestedChainSubmitter(submitter(evm, log)), name="propose_settlement")
    goal = "Sell 1 WETH for USDC between 1,000 and 10,000 USDC per WETH within 10 minutes"
    evm.supervisor.stop(["node-3", "node-4"])
    try:
        result = asyncio.run(
            Agent("settler", model=settlement_offline_model(), tools=[tool]).run(goal)
        )
    finally:
        evm.supervisor.start(["node-3", "node-4"])
    assert [e.kind for e in result.trace] == ["model", "tool_error", "model"]
    assert '"status":"aborted"' in result.answer and "QuorumNotReached" in result.answer
    assert [e.kind for e in log.entries()][-1] == "aborted"


def test_the_proposal_reaches_the_log_as_the_agent_built_it(evm, log: AttestationLog) -> None:
    chain = AttestedChainSubmitter(submitter(evm, log))
    proposal: ActionProposal = args(1_000, 10_000).proposal()
    result = asyncio.run(chain.submit(proposal))
    [logged] = [e for e in log.by_execution(result.execution_id) if e.kind == "proposal"]
    assert logged.payload["proposal"] == proposal.model_dump(mode="json")
    assert result.report_id == evm.deployment.workflow.report_id
