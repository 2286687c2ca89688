"""Escrows read from the chain, and refunds of trades that can no longer settle.

A trade escrowed on the SettlementGate ends settled or refunded. It can no
longer settle when the gate refused its report (``PriceOutOfBounds``...), a
person rejected it, the DON could not reach a quorum and the deadline passed,
or it simply expired. The gate's ``refund`` works only after the trade's
deadline (either party may call it); ``Refunder.refund`` then:

1. reads the trade onchain; a trade already refunded (by us before a crash,
   or by a party by hand) is adopted and logged late (``recovered``), a
   settled one is an error;
2. sends ``refund`` with the seller's key (vouch's demo parties are derived
   from the escrow step's idempotency key, see ``ChainSubmitter``);
3. withdraws any leg the gate credited instead of pushing (pull payments, when
   the deployed gate has ``owed``/``withdraw``), each with its own party's key;
4. logs one ``refund`` entry under the trade's execution (see docs/recovery.md
   for its payload); at most one per trade, so a second refund says so and
   does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from web3 import Web3
from web3.logs import DISCARD

from vouch.cre_adapters import ContractRevert
from vouch.cre_adapters.evm import Artifacts, ChainWriter, Deployment, contract
from vouch.verifier import LogEntry, LogStore

from ._chainlogs import event_logs
from ._errors import VouchError

STATUS = ("None", "Open", "Funded", "Settled", "Refunded")
REFUND_GAS = 400_000


class RefundError(VouchError):
    """A trade cannot be refunded (yet); nothing was sent or logged."""


class RefundNotYet(RefundError):
    """The trade's deadline has not passed: the gate refunds only after it."""

    def __init__(self, trade_id: int, deadline: int, now: int) -> None:
        super().__init__(
            f"trade #{trade_id} is refundable after its deadline {deadline} "
            f"(in {deadline - now + 1}s, chain time {now}); run `vouch trades refund {trade_id}` "
            "then, or add --wait"
        )
        self.trade_id, self.deadline, self.now = trade_id, deadline, now


class TradeView(BaseModel):
    """One trade as the gate holds it."""

    trade_id: int
    seller: str
    buyer: str
    base_token: str
    base_amount: int
    quote_token: str
    min_price: int
    max_price: int
    max_quote: int
    deadline: int
    action_hash: str
    needs_approval: bool
    approved: bool
    status: str

    @classmethod
    def of(cls, trade_id: int, terms: Any) -> TradeView:
        """From ``getTrade``'s tuple."""
        return cls(
            trade_id=trade_id,
            seller=terms[0],
            buyer=terms[1],
            base_token=terms[2],
            base_amount=int(terms[3]),
            quote_token=terms[4],
            min_price=int(terms[5]),
            max_price=int(terms[6]),
            max_quote=int(terms[7]),
            deadline=int(terms[8]),
            action_hash="0x" + bytes(terms[9]).hex(),
            needs_approval=bool(terms[10]),
            approved=bool(terms[11]),
            status=STATUS[int(terms[12])],
        )

    @property
    def escrowed(self) -> bool:
        """Still holding deposits (Open or Funded)."""
        return self.status in ("Open", "Funded")


class EscrowBook:
    """Reads the gate's trades (read-only: it never sends anything)."""

    def __init__(self, w3: Web3, artifacts: Artifacts, deployment: Deployment) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.gate = contract(w3, artifacts, "SettlementGate", deployment.address("SettlementGate"))

    def trade(self, trade_id: int) -> TradeView:
        """The trade ``trade_id``.

        Raises:
            RefundError: the gate has no such trade.
        """
        terms = self.gate.functions.getTrade(trade_id).call()
        view = TradeView.of(trade_id, terms)
        if view.status == "None":
            raise RefundError(
                f"gate {self.gate.address} has no trade #{trade_id}; `vouch trades list` shows them"
            )
        return view

    def trades(self) -> list[TradeView]:
        """Every trade created on the gate since its deployment, oldest first."""
        created = event_logs(self.gate.events.TradeCreated(), self.deployment.block)
        return [self.trade(int(e["args"]["tradeId"])) for e in created]

    def now(self) -> int:
        """The latest block's timestamp."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def refunded_event(self, trade_id: int) -> Any | None:
        """The gate's TradeRefunded event for ``trade_id``, if any."""
        events = event_logs(
            self.gate.events.TradeRefunded(), self.deployment.block, {"tradeId": trade_id}
        )
        return events[-1] if events else None


def execution_of(log: LogStore, trade_id: int, gate: str) -> str | None:
    """The execution whose proposal escrowed ``trade_id`` on ``gate``, from the log."""
    found = None
    for entry in log.entries():
        p = entry.payload
        if (
            entry.kind == "proposal"
            and p.get("trade_id") == trade_id
            and str(p.get("gate", "")).lower() == gate.lower()
        ):
            found = entry.execution_id
    return found


def why_unsettled(entries: list[LogEntry]) -> str:
    """Why the execution's trade did not settle, from its log entries (last word wins)."""
    reason = "expired: the deadline passed before it settled"
    for e in entries:
        p = e.payload
        if e.kind == "hitl" and p.get("decision") == "rejected":
            reason = (
                f"rejected by approver {p.get('approver')}: {p.get('note') or 'no reason given'}"
            )
        elif e.kind == "submission" and p.get("status") == "refused":
            error = p.get("error") or {}
            reason = f"refused onchain: {error.get('name', '?')}({error.get('args', {})})"
        elif e.kind == "aborted":
            reason = f"no attested report: {p.get('error')}: {p.get('detail')}"
    return reason


class Refunder:
    """Refunds the demo parties' trades and logs each refund once.

    Args:
        writer: the deployer (tops up a party's gas if needed).
        artifacts: compiled contracts.
        deployment: where the gate is.
        log: the attestation log the ``refund`` entry goes to.
        parties: gives the (seller, buyer) writers of an escrow's idempotency key.
        on_event: gets ``refunded`` events.
    """

    def __init__(
        self,
        writer: ChainWriter,
        artifacts: Artifacts,
        deployment: Deployment,
        log: LogStore,
        parties: Callable[[str], tuple[ChainWriter, ChainWriter]],
        on_event: Callable[[str, dict[str, Any]], None] = lambda kind, data: None,
    ) -> None:
        self.writer = writer
        self.artifacts = artifacts
        self.book = EscrowBook(writer.w3, artifacts, deployment)
        self.deployment = deployment
        self.log = log
        self.parties = parties
        self.emit = on_event

    def logged(self, trade_id: int) -> LogEntry | None:
        """The ``refund`` entry of ``trade_id`` on this gate, if the log has one."""
        gate = self.book.gate.address.lower()
        for entry in self.log.entries():
            p = entry.payload
            if (
                entry.kind == "refund"
                and p.get("trade_id") == trade_id
                and str(p.get("gate", "")).lower() == gate
            ):
                return entry
        return None

    def refund(self, trade_id: int, party_key: str, wait: bool = False) -> tuple[LogEntry, bool]:
        """Refund ``trade_id`` (escrowed by the parties of ``party_key``); its entry and if new.

        Raises:
            RefundNotYet: before the deadline, unless ``wait`` (then it waits for it).
            RefundError: the trade settled, or the log never proposed it.
        """
        done = self.logged(trade_id)
        if done is not None:
            return done, False
        gate = self.book.gate.address
        execution = execution_of(self.log, trade_id, gate)
        if execution is None:
            raise RefundError(
                f"the log has no proposal of trade #{trade_id} on gate {gate}: "
                "it was not escrowed through this home (use --log for another log)"
            )
        trade = self.book.trade(trade_id)
        if trade.status == "Settled":
            raise RefundError(f"trade #{trade_id} settled onchain: there is nothing to refund")
        seller, buyer = self.parties(party_key)
        if trade.escrowed:
            self._await_deadline(trade, seller, wait)
            # the latest block may still predate the deadline (a chain that mines on demand):
            # gas estimated against it would revert TradeNotExpired; the pending block does not
            receipt = self._send_refund(trade, seller, wait)
            recovered = None
        else:  # refunded before this process could log it
            event = self.book.refunded_event(trade_id)
            if event is None:
                raise RefundError(f"trade #{trade_id} is {trade.status} but has no TradeRefunded")
            receipt = self.writer.w3.eth.get_transaction_receipt(event["transactionHash"])
            recovered = "refunded onchain before it was logged; logged when resumed"
        payload = self._payload(trade, receipt, execution)
        payload["withdrawals"] = self._withdraw(trade, [seller, buyer])
        if recovered:
            payload["recovered"] = recovered
        entry = self.log.append(execution, "refund", payload)
        self.emit("refunded", payload)
        return entry, True

    def _await_deadline(self, trade: TradeView, seller: ChainWriter, wait: bool) -> None:
        """Return once the chain's next block is past the deadline (waiting for it if ``wait``).

        The chain's clock is what counts, not this machine's: the gate's
        ``refund`` is simulated against the pending block, and its
        ``TradeNotExpired(deadline, nowTs)`` says how long is left.
        """
        refund = self.book.gate.functions.refund(trade.trade_id)
        give_up = time.monotonic() + max(0, trade.deadline - self.book.now()) + 300
        while True:
            left = self._left(refund, seller)
            if left is None:
                return
            if not wait:
                raise RefundNotYet(trade.trade_id, trade.deadline, trade.deadline - left + 1)
            if time.monotonic() > give_up:
                raise RefundError(f"trade #{trade.trade_id}: the chain's clock does not advance")
            time.sleep(min(max(left, 1), 30))

    def _send_refund(self, trade: TradeView, seller: ChainWriter, wait: bool) -> Any:
        """Send ``refund`` once the latest block is past the deadline.

        Gas is estimated against the latest block; a chain that mines on demand
        (anvil) has none past the deadline until something is sent, so the
        deployer mines one with a 0-value transfer to itself. A block stamped
        before the deadline after all is waited out by the revert's own numbers.
        """
        for _ in range(5):
            if self.book.now() <= trade.deadline:
                self.writer.send_value(self.writer.address, 0)
            try:
                return seller.transact(
                    self.book.gate.functions.refund(trade.trade_id), gas=REFUND_GAS
                )
            except ContractRevert as exc:
                if exc.name != "TradeNotExpired" or not wait:
                    raise
                time.sleep(max(1, int(exc.args_["deadline"]) - int(exc.args_["nowTs"]) + 1))
        raise RefundError(f"trade #{trade.trade_id}: the chain's clock does not pass its deadline")

    @staticmethod
    def _left(refund: Any, seller: ChainWriter) -> int | None:
        """Seconds until the pending block may refund, or None if it may now."""
        try:
            refund.call({"from": seller.address}, block_identifier="pending")
        except Exception as exc:  # noqa: BLE001 - decoded below; anything else is re-raised
            data = getattr(exc, "data", None)
            if not isinstance(data, str):
                raise
            revert = seller.decoder.decode(data)
            if revert.name != "TradeNotExpired":
                raise revert from None
            return int(revert.args_["deadline"]) - int(revert.args_["nowTs"]) + 1
        return None

    def _payload(self, trade: TradeView, receipt: Any, execution: str) -> dict[str, Any]:
        events = self.book.gate.events.TradeRefunded().process_receipt(receipt, errors=DISCARD)
        args = events[0]["args"]
        entries = self.log.by_execution(execution)
        return {
            "trade_id": trade.trade_id,
            "gate": self.book.gate.address,
            "chain_id": self.deployment.chain_id,
            "reason": why_unsettled(entries),
            "caller": Web3.to_checksum_address(receipt["from"]),
            "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(),
            "block_number": int(receipt["blockNumber"]),
            "base_amount": int(args["baseAmount"]),
            "quote_amount": int(args["quoteAmount"]),
        }

    def _withdraw(self, trade: TradeView, parties: list[ChainWriter]) -> list[dict[str, Any]]:
        """Pull each leg the gate credited instead of paying (gates with ``owed``)."""
        functions = self.book.gate.functions
        if not hasattr(functions, "owed"):
            return []
        done = []
        for party in parties:
            for token in {trade.base_token, trade.quote_token}:
                amount = int(functions.owed(party.address, token).call())
                if amount == 0:
                    continue
                receipt = party.transact(functions.withdraw(token))
                done.append(
                    {
                        "account": party.address,
                        "token": token,
                        "amount": amount,
                        "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(),
                    }
                )
        return done
