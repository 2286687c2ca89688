"""Wiring: an agent's ActionProposal -> escrowed trade -> DON attestation -> forwarder -> log.

Idempotent across a crash, given the step's idempotency key:

- escrow: the demo's two parties are derived from the key (HMAC with the
  party secret), so a resumed escrow finds the trade its seller already opened
  (``TradeCreated`` filtered by seller) and adopts it; every funding step
  (gas, mint, approve, create, fund) is done only if the chain does not show
  it done. The proposal is logged once per execution.
- settle: a submission already in the log, or a report the forwarder already
  processed for this execution (``ReportProcessed``, logged late and marked
  ``recovered``), is adopted instead of attesting again; a DON round cut short
  before anything was mined runs again after a ``retry`` entry that says so.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from eth_account import Account
from pydantic import BaseModel
from web3 import Web3
from web3.logs import DISCARD

from vouch.cre_adapters import (
    ExecutionRef,
    ReportDelivery,
    SettlementJob,
    SettlementOutcome,
    SettlementWorkflow,
)
from vouch.cre_adapters.evm import Artifacts, ChainWriter, Deployment, contract
from vouch.verifier import LogEntry, LogStore, canonical_json, keccak

from ._agent_settlement import ActionProposal
from ._anchor import AnchorPolicy
from ._chainlogs import event_logs
from ._errors import VouchError
from ._refunds import Refunder

PARTY_GAS_FUNDS = Web3.to_wei(1, "ether")
OPEN = 1  # SettlementGate.Status.Open
DON_KINDS = frozenset({"observations", "consensus", "skipped", "report", "aborted", "submission"})


def action_hash(proposal: ActionProposal) -> str:
    """keccak256 of the proposal's canonical JSON, without the free-text rationale and trace hash."""
    body = proposal.model_dump(mode="json", exclude={"rationale", "trace_hash"})
    return "0x" + keccak(canonical_json(body)).hex()


def party_writers(
    deployer: ChainWriter, secret: bytes, key: str
) -> tuple[ChainWriter, ChainWriter]:
    """The (seller, buyer) the demo derives for an escrow's idempotency key ``key``.

    Each party's key is HMAC-SHA256(``secret``, "vouch party|ROLE|KEY"): the
    same escrow key always gives the same parties, so a resumed escrow and a
    later refund act as them.
    """
    writers = []
    for role in ("seller", "buyer"):
        seed = hmac.new(secret, f"vouch party|{role}|{key}".encode(), "sha256").digest()
        writers.append(ChainWriter(deployer.w3, seed, deployer.decoder))
    return writers[0], writers[1]


class Escrow(BaseModel):
    """A funded trade waiting for its attested settlement (JSON: it survives a restart)."""

    job: SettlementJob
    execution: ExecutionRef
    gate: str
    chain_id: int
    base_amount: int
    needs_approval: bool
    party_key: str | None = None
    """The idempotency key the demo parties derive from (None: fresh parties, not refundable here)."""


class ChainSubmitter:
    """Implements ``agents.ProposalSubmitter``: escrows the trade, then runs the verified settlement.

    In the demo, vouch plays both trading parties with accounts funded by the
    deployer: fresh ones, or, for an escrow with an idempotency key, ones
    derived from the key and ``party_secret`` (so a resumed escrow acts as the
    same parties). With real parties, they call ``createTrade``/``fundTrade``
    themselves and only the attestation part runs here.

    Args:
        party_secret: keys the derived parties (keep it secret: it is their
            keys' seed); needed for an escrow with an idempotency key.
    """

    def __init__(
        self,
        workflow: SettlementWorkflow,
        deployer: ChainWriter,
        artifacts: Artifacts,
        deployment: Deployment,
        log: LogStore,
        on_event: Callable[[str, dict[str, Any]], None],
        anchor_every: int | AnchorPolicy = 25,
        party_secret: bytes | None = None,
    ) -> None:
        self.workflow = workflow
        self.deployer = deployer
        self.artifacts = artifacts
        self.deployment = deployment
        self.log = log
        self.emit = on_event
        # anchor_every: the anchoring policy, or N alone (every N entries or the default T seconds)
        self.anchoring = (
            anchor_every if isinstance(anchor_every, AnchorPolicy) else AnchorPolicy(anchor_every)
        )
        self.party_secret = party_secret
        self.last_outcome: SettlementOutcome | None = None
        self.last_trade_id: int | None = None

    async def submit(self, proposal: ActionProposal) -> dict[str, Any]:
        """Open and fund the trade the proposal describes, then attest and settle it."""
        return await self.settle(self.escrow(proposal))

    def new_execution(self, proposal: ActionProposal) -> ExecutionRef:
        """A fresh execution id for ``proposal``, before its trade exists (to journal it first)."""
        # an execution id binds the workflow, the action hash and a sequence, not the trade
        return self.workflow.new_execution(
            SettlementJob(trade_id=0, action_hash=action_hash(proposal))
        )

    def escrow(
        self,
        proposal: ActionProposal,
        key: str | None = None,
        execution: ExecutionRef | None = None,
    ) -> Escrow:
        """Open and fund the trade; log the proposal under the execution id the DON will use.

        Args:
            proposal: what to escrow.
            key: the idempotency key: an escrow already (partly) done under it
                is found onchain and completed, not repeated.
            execution: the execution to log it under (a resumed run passes the
                one it chose before); a fresh one if None.
        """
        digest = action_hash(proposal)
        trade_id = self.open_trade(proposal, digest, key)
        job = SettlementJob(trade_id=trade_id, action_hash=digest, feed=proposal.facts[0].feed)
        ref = execution or self.workflow.new_execution(job)
        gate = self.deployment.address("SettlementGate")
        payload = {
            "proposal": proposal.model_dump(mode="json"),
            "action_hash": digest,
            "trade_id": trade_id,
            "gate": gate,
            "chain_id": self.deployment.chain_id,
        }
        self._log_once(ref.execution_id, "proposal", payload)
        terms = self._gate().functions.getTrade(trade_id).call()
        return Escrow(
            job=job,
            execution=ref,
            gate=gate,
            chain_id=self.deployment.chain_id,
            base_amount=proposal.params.base_amount,
            needs_approval=bool(terms[10]),
            party_key=key,
        )

    async def settle(self, escrow: Escrow, key: str | None = None) -> dict[str, Any]:
        """Attest the escrowed trade's price on the DON and submit the report; anchor the log.

        An outcome this execution already has (logged, or mined and not yet
        logged) is adopted: no second DON round, no second transaction.

        Args:
            escrow: the funded trade and its execution.
            key: the idempotency key, named in a ``retry`` entry if a DON round
                cut short before anything was mined runs again.
        """
        outcome = self.recorded_outcome(escrow)
        if outcome is None:
            attempt = self.workflow.next_attempt(escrow.execution.execution_id)
            self._mark_retry(escrow, key, attempt)
            outcome = await self.workflow.run(escrow.job, escrow.execution, attempt=attempt)
        self.last_outcome = outcome
        self.last_trade_id = escrow.job.trade_id
        anchored = self.anchoring.maybe_anchor(
            self.log,
            self.deployer,
            self.artifacts,
            self.deployment,
            on_skip=lambda why: self.emit("anchor-skipped", {"reason": why}),
        )
        if anchored is not None:
            self.emit("anchored", anchored.model_dump())
        return outcome.model_dump(mode="json")

    def recorded_outcome(self, escrow: Escrow) -> SettlementOutcome | None:
        """The settlement this execution already has: logged, or mined (then logged now)."""
        entries = self.log.by_execution(escrow.execution.execution_id)
        mined = [e for e in entries if e.kind == "submission" and e.payload.get("tx_hash")]
        if mined:
            return _outcome(escrow, entries, mined[-1])
        self._await_pending(self.workflow.writer.address)
        event = self._processed(escrow)
        if event is None:
            return None
        submission = self._log_late_submission(escrow, entries, event)
        return _outcome(escrow, [*entries, submission], submission)

    def open_trade(self, proposal: ActionProposal, digest: str, key: str | None = None) -> int:
        """Create and fund the escrow for ``proposal`` with two funded party accounts.

        With ``key``, the parties are derived from it and only what the chain
        does not show done yet is done: a trade their seller opened for
        ``digest`` is adopted, and funded if it is not.
        """
        gate = self._gate()
        seller, buyer = self._parties(key)
        trade_id = self._find_trade(gate, seller.address, digest)
        if trade_id is None:
            trade_id = self._create(gate, seller, buyer, proposal, digest)
        self._fund(gate, buyer, trade_id)
        self.emit("trade", {"trade_id": trade_id, "seller": seller.address, "buyer": buyer.address})
        self.last_trade_id = trade_id
        return trade_id

    def _create(
        self,
        gate: Any,
        seller: ChainWriter,
        buyer: ChainWriter,
        proposal: ActionProposal,
        digest: str,
    ) -> int:
        p = proposal.params
        base, quote = self._token(p.base_token), self._token(p.quote_token)
        self._gas(seller.address)
        self._top_up(base, seller.address, p.base_amount)
        self._allow(seller, base, gate.address, p.base_amount)
        deadline = self.deployer.w3.eth.get_block("latest")["timestamp"] + p.deadline_seconds
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
        created = gate.events.TradeCreated().process_receipt(receipt, errors=DISCARD)
        return int(created[0]["args"]["tradeId"])

    def _fund(self, gate: Any, buyer: ChainWriter, trade_id: int) -> None:
        """The buyer escrows the quote leg, unless the trade is past Open already."""
        terms = gate.functions.getTrade(trade_id).call()
        if terms[12] != OPEN:
            return
        quote = self._contract("TestToken", terms[4])
        max_quote = int(terms[7])
        self._gas(buyer.address)
        self._top_up(quote, buyer.address, max_quote)
        self._allow(buyer, quote, gate.address, max_quote)
        buyer.transact(gate.functions.fundTrade(trade_id))

    def _find_trade(self, gate: Any, seller: str, digest: str) -> int | None:
        """The trade ``seller`` opened onchain, if any (it must be for ``digest``)."""
        created = event_logs(gate.events.TradeCreated(), self.deployment.block, {"seller": seller})
        if not created:
            return None
        args = created[-1]["args"]
        if "0x" + bytes(args["actionHash"]).hex() != digest:
            raise VouchError(
                f"party {seller} opened trade #{args['tradeId']} for another action "
                f"(0x{bytes(args['actionHash']).hex()}, not {digest}); not adopting it"
            )
        return int(args["tradeId"])

    def parties(self, key: str) -> tuple[ChainWriter, ChainWriter]:
        """The (seller, buyer) of the escrow made under idempotency key ``key``."""
        return self._parties(key)

    def refunder(self) -> Refunder:
        """Refunds this gate's trades escrowed by the derived parties; logs to this log."""
        return Refunder(
            self.deployer, self.artifacts, self.deployment, self.log, self.parties, self.emit
        )

    def _parties(self, key: str | None) -> tuple[ChainWriter, ChainWriter]:
        if key is None:
            return self._writer(Account.create().key), self._writer(Account.create().key)
        if self.party_secret is None:
            raise VouchError(
                "an escrow with an idempotency key needs the submitter's party_secret "
                "(ChainSubmitter(..., party_secret=...)): it derives the parties from the key"
            )
        seller, buyer = party_writers(self.deployer, self.party_secret, key)
        for party in (seller, buyer):
            self._await_pending(party.address)
        return seller, buyer

    def _writer(self, key: bytes) -> ChainWriter:
        return ChainWriter(self.deployer.w3, key, self.deployer.decoder)

    def _gas(self, account: str) -> None:
        """Gas money for a party that has not sent anything yet, up to PARTY_GAS_FUNDS."""
        eth = self.deployer.w3.eth
        balance = eth.get_balance(account)  # type: ignore[arg-type]
        if eth.get_transaction_count(account) == 0 and balance < PARTY_GAS_FUNDS:  # type: ignore[arg-type]
            self.deployer.send_value(account, PARTY_GAS_FUNDS - balance)

    def _top_up(self, token: Any, holder: str, amount: int) -> None:
        """Mint what ``holder`` lacks of ``amount``."""
        have = int(token.functions.balanceOf(holder).call())
        if have < amount:
            self.deployer.transact(token.functions.mint(holder, amount - have))

    @staticmethod
    def _allow(owner: ChainWriter, token: Any, spender: str, amount: int) -> None:
        if int(token.functions.allowance(owner.address, spender).call()) < amount:
            owner.transact(token.functions.approve(spender, amount))

    def _await_pending(self, account: str) -> None:
        """Wait until ``account`` has nothing in the mempool: what it sent is mined or dropped.

        A crash may leave a sent transaction unmined; reading the chain before it
        lands would send it again.
        """
        eth, writer = self.deployer.w3.eth, self.deployer
        deadline = time.monotonic() + writer.receipt_timeout
        while eth.get_transaction_count(account, "pending") > eth.get_transaction_count(  # type: ignore[arg-type]
            account,  # type: ignore[arg-type]
            "latest",
        ):
            if time.monotonic() > deadline:
                raise VouchError(
                    f"{account} still has transactions pending after "
                    f"{writer.receipt_timeout}s; wait until they are mined, then resume the run"
                )
            time.sleep(0.2)

    def _processed(self, escrow: Escrow) -> Any | None:
        """The forwarder's last ReportProcessed for this execution, if it processed one."""
        forwarder = self._contract("Forwarder", self.deployment.address("Forwarder"))
        events = event_logs(
            forwarder.events.ReportProcessed(),
            self.deployment.block,
            {
                "receiver": escrow.gate,
                "workflowExecutionId": bytes.fromhex(escrow.execution.execution_id[2:]),
            },
        )
        return events[-1] if events else None

    def _log_late_submission(self, escrow: Escrow, entries: list[LogEntry], event: Any) -> LogEntry:
        """Log the submission a crash kept from the log: the mined transaction, read back."""
        reports = [e for e in entries if e.kind == "report"]
        if not reports:
            raise VouchError(
                f"the forwarder processed a report for execution {escrow.execution.execution_id} "
                f"in tx 0x{bytes(event['transactionHash']).hex()}, but the log has no report "
                "entry for it: this log did not submit it"
            )
        receipt = self.deployer.w3.eth.get_transaction_receipt(event["transactionHash"])
        raw = bytes.fromhex(reports[-1].payload["raw"][2:])
        delivery = ReportDelivery(
            self.deployment,
            self.artifacts,
            self.deployer,
            self.log,
            "SettlementGate",
            delivered_status="settled",
        )
        payload = delivery.submission(receipt, raw, bool(event["args"]["result"]))
        payload["recovered"] = "mined before the run stopped; logged when it resumed"
        status = payload["status"]
        entry = self.log.append(escrow.execution.execution_id, "submission", payload)
        self.emit(status, payload)
        return entry

    def _mark_retry(self, escrow: Escrow, key: str | None, attempt: int) -> None:
        """Before a DON round runs again for an execution, log that the earlier one was cut short."""
        earlier = [
            e for e in self.log.by_execution(escrow.execution.execution_id) if e.kind in DON_KINDS
        ]
        if not earlier:
            return
        payload = {
            "reason": "an earlier attempt of this execution stopped before a report was mined",
            "earlier_seqs": [e.seq for e in earlier],
            "idempotency_key": key,
            "attempt": attempt,
        }
        self.log.append(escrow.execution.execution_id, "retry", payload)

    def _log_once(self, execution_id: str, kind: str, payload: dict[str, Any]) -> LogEntry:
        """Append the entry unless this execution already has one of ``kind`` (a resumed step)."""
        for entry in self.log.by_execution(execution_id):
            if entry.kind == kind:
                return entry
        return self.log.append(execution_id, kind, payload)

    def _gate(self) -> Any:
        return self._contract("SettlementGate", self.deployment.address("SettlementGate"))

    def _token(self, symbol: str) -> Any:
        if symbol not in self.deployment.contracts:
            raise VouchError(f"unknown token {symbol!r}; this deployment has WETH and USDC")
        return self._contract("TestToken", self.deployment.address(symbol))

    def _contract(self, name: str, address: str) -> Any:
        return contract(self.deployer.w3, self.artifacts, name, address)


def _outcome(escrow: Escrow, entries: list[LogEntry], submission: LogEntry) -> SettlementOutcome:
    """The outcome a logged submission records, with its execution's price and signers."""
    last = {e.kind: e for e in entries}
    p = submission.payload
    return SettlementOutcome(
        execution_id=escrow.execution.execution_id,
        status=p["status"],
        price=int(last["consensus"].payload["value"]),
        signers=list(last["report"].payload["signers"]),
        tx_hash=p["tx_hash"],
        block_number=int(p["block_number"]),
        gas_used=int(p["gas_used"]),
        error=p.get("error"),
        log_seq=submission.seq,
    )
