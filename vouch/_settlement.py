"""Wiring: an agent's ActionProposal -> escrowed trade -> DON attestation -> forwarder -> log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account import Account
from pydantic import BaseModel
from web3 import Web3
from web3.logs import DISCARD

from agents import ActionProposal
from cre_adapters import ExecutionRef, SettlementJob, SettlementOutcome, SettlementWorkflow
from cre_adapters.evm import Artifacts, ChainWriter, Deployment, contract
from verifier import AttestationLog, canonical_json, keccak

from ._anchor import anchor_log
from ._errors import VouchError

PARTY_GAS_FUNDS = Web3.to_wei(1, "ether")


def action_hash(proposal: ActionProposal) -> str:
    """keccak256 of the proposal's canonical JSON, without the free-text rationale and trace hash."""
    body = proposal.model_dump(mode="json", exclude={"rationale", "trace_hash"})
    return "0x" + keccak(canonical_json(body)).hex()


class Escrow(BaseModel):
    """A funded trade waiting for its attested settlement (JSON: it survives a restart)."""

    job: SettlementJob
    execution: ExecutionRef
    gate: str
    chain_id: int
    base_amount: int
    needs_approval: bool


class ChainSubmitter:
    """Implements ``agents.ProposalSubmitter``: escrows the trade, then runs the verified settlement.

    In the demo, vouch plays both trading parties with fresh accounts funded by
    the deployer; with real parties, they call ``createTrade``/``fundTrade``
    themselves and only the attestation part runs here.
    """

    def __init__(
        self,
        workflow: SettlementWorkflow,
        deployer: ChainWriter,
        artifacts: Artifacts,
        deployment: Deployment,
        log: AttestationLog,
        on_event: Callable[[str, dict[str, Any]], None],
        anchor_every: int = 25,
    ) -> None:
        self.workflow = workflow
        self.deployer = deployer
        self.artifacts = artifacts
        self.deployment = deployment
        self.log = log
        self.emit = on_event
        self.anchor_every = anchor_every
        self.last_outcome: SettlementOutcome | None = None
        self.last_trade_id: int | None = None

    async def submit(self, proposal: ActionProposal) -> dict[str, Any]:
        """Open and fund the trade the proposal describes, then attest and settle it."""
        return await self.settle(self.escrow(proposal))

    def escrow(self, proposal: ActionProposal) -> Escrow:
        """Open and fund the trade; log the proposal under the execution id the DON will use."""
        digest = action_hash(proposal)
        trade_id = self.open_trade(proposal, digest)
        job = SettlementJob(trade_id=trade_id, action_hash=digest, feed=proposal.facts[0].feed)
        ref = self.workflow.new_execution(job)
        gate = self.deployment.address("SettlementGate")
        self.log.append(
            bytes.fromhex(ref.execution_id[2:]),
            "proposal",
            {
                "proposal": proposal.model_dump(mode="json"),
                "action_hash": digest,
                "trade_id": trade_id,
                "gate": gate,
                "chain_id": self.deployment.chain_id,
            },
        )
        terms = self._contract("SettlementGate", gate).functions.getTrade(trade_id).call()
        return Escrow(
            job=job,
            execution=ref,
            gate=gate,
            chain_id=self.deployment.chain_id,
            base_amount=proposal.params.base_amount,
            needs_approval=bool(terms[10]),
        )

    async def settle(self, escrow: Escrow) -> dict[str, Any]:
        """Attest the escrowed trade's price on the DON and submit the report; anchor the log."""
        outcome = await self.workflow.run(escrow.job, escrow.execution)
        self.last_outcome = outcome
        self.last_trade_id = escrow.job.trade_id
        anchored = anchor_log(
            self.log, self.deployer, self.artifacts, self.deployment, minimum=self.anchor_every
        )
        if anchored is not None:
            self.emit("anchored", anchored.model_dump())
        return outcome.model_dump(mode="json")

    def open_trade(self, proposal: ActionProposal, digest: str) -> int:
        """Create and fund the escrow for ``proposal`` with two fresh, funded party accounts."""
        p = proposal.params
        base, quote = self._token(p.base_token), self._token(p.quote_token)
        gate = self._contract("SettlementGate", self.deployment.address("SettlementGate"))
        seller, buyer = self._party(), self._party()
        max_quote = -(-p.base_amount * p.max_price // 10**18)
        w3 = self.deployer.w3
        deadline = w3.eth.get_block("latest")["timestamp"] + p.deadline_seconds
        self.deployer.transact(base.functions.mint(seller.address, p.base_amount))
        self.deployer.transact(quote.functions.mint(buyer.address, max_quote))
        seller.transact(base.functions.approve(gate.address, p.base_amount))
        receipt = seller.transact(
            gate.functions.createTrade(
                buyer.address,
                base.address,
                p.base_amount,
                quote.address,
                p.min_price,
                p.max_price,
                deadline,
                digest,
            )
        )
        trade_id = int(
            gate.events.TradeCreated().process_receipt(receipt, errors=DISCARD)[0]["args"][
                "tradeId"
            ]
        )
        buyer.transact(quote.functions.approve(gate.address, max_quote))
        buyer.transact(gate.functions.fundTrade(trade_id))
        self.emit("trade", {"trade_id": trade_id, "seller": seller.address, "buyer": buyer.address})
        self.last_trade_id = trade_id
        return trade_id

    def _party(self) -> ChainWriter:
        account = Account.create()
        self.deployer.send_value(account.address, PARTY_GAS_FUNDS)
        return ChainWriter(self.deployer.w3, account.key, self.deployer.decoder)

    def _token(self, symbol: str) -> Any:
        if symbol not in self.deployment.contracts:
            raise VouchError(f"unknown token {symbol!r}; this deployment has WETH and USDC")
        return self._contract("TestToken", self.deployment.address(symbol))

    def _contract(self, name: str, address: str) -> Any:
        return contract(self.deployer.w3, self.artifacts, name, address)
