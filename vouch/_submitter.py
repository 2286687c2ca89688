"""vouch's ``agents.AttestingSubmitter``: the verified settlement path, answering attested results."""

from __future__ import annotations

from typing import Any

from vouch.cre_adapters import ContractRevert, CreError, SettlementOutcome

from ._agent_settlement import ActionProposal, AttestedResult, AttestingSubmitter, Revert
from ._settlement import ChainSubmitter


class AttestedChainSubmitter(AttestingSubmitter):
    """Escrows the proposed trade, has the DON attest its price, submits, and reports back.

    Wraps ``ChainSubmitter``: every onchain outcome is an ``AttestedResult``:
    ``settled``, ``refused`` by the gate (decoded revert), ``rejected`` by the
    forwarder (decoded revert), or ``aborted`` when the DON could not attest
    (nothing submitted). Anything else raises, and ``agents.proposal_tool``
    reports it to the model as ``failed``.

    Args:
        chain: the settlement path (workflow, deployment, log, anchoring).
    """

    def __init__(self, chain: ChainSubmitter) -> None:
        self.chain = chain

    async def submit(self, proposal: ActionProposal) -> AttestedResult:
        """Carry out ``proposal`` at the DON-attested price; the attested result."""
        report_id = self.chain.deployment.workflow.report_id
        try:
            outcome = SettlementOutcome.model_validate(await self.chain.submit(proposal))
        except ContractRevert as exc:
            revert = Revert(name=exc.name, args=exc.args_)
            return AttestedResult(
                status="rejected", revert=revert, report_id=report_id, detail=self._trade()
            )
        except CreError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return AttestedResult(
                status="aborted", error=error, report_id=report_id, detail=self._trade()
            )
        return _attested(outcome, report_id, self._trade())

    def _trade(self) -> dict[str, Any]:
        return {"trade_id": self.chain.last_trade_id}


def _attested(outcome: SettlementOutcome, report_id: str, detail: dict[str, Any]) -> AttestedResult:
    revert = (
        Revert(name=outcome.error["name"], args=outcome.error["args"]) if outcome.error else None
    )
    return AttestedResult(
        status=outcome.status,
        tx_hash=outcome.tx_hash,
        execution_id=outcome.execution_id,
        report_id=report_id,
        block_number=outcome.block_number,
        revert=revert,
        detail={
            **detail,
            "price": outcome.price,
            "signers": outcome.signers,
            "gas_used": outcome.gas_used,
            "log_seq": outcome.log_seq,
        },
    )
