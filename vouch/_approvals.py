"""Human approvals of onchain actions: the approver's key, the gate's policy, signed decisions.

A person decides with ``vouch runs approve|reject RUN``; this module turns the
decision into evidence. The approver's key lives in an encrypted keystore
(``<home>/keys/approver.json``, or ``VOUCH_APPROVER_KEYSTORE`` anywhere, with its
own password: ``approver.password`` next to it, ``VOUCH_APPROVER_PASSWORD_FILE`` or
``VOUCH_KEY_PASSWORDS__APPROVER``; see docs/don.md) and holds
APPROVER_ROLE on the SettlementGate. An approval is the gate's own EIP-712
``approvalDigest(tradeId)`` signed by that key; when the trade is above the
gate's threshold the signature is recorded onchain with ``approveTrade`` (the
gate refuses to settle it otherwise). A rejection is signed over the canonical
decision (``verifier.rejection_digest``). Either way one ``hitl`` entry lands in
the attestation log under the settlement's execution id, and ``vouch audit``
checks it against the chain.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from web3 import Web3

from vouch.cre_adapters.evm import Artifacts, ChainWriter, Deployment, contract
from vouch.verifier import APPROVER_ROLE, LogStore, rejection_digest

from ._chainlogs import event_logs
from ._errors import VouchError


class ApprovalError(VouchError):
    """A decision could not be signed or recorded; nothing was logged."""


def ensure_policy(
    writer: ChainWriter, artifacts: Artifacts, deployment: Deployment, approver: str, threshold: int
) -> list[str]:
    """Grant ``approver`` APPROVER_ROLE and set the WETH threshold where they differ; say what changed.

    ``writer`` must hold the gate's admin role (the deployer does).
    """
    gate = contract(writer.w3, artifacts, "SettlementGate", deployment.address("SettlementGate"))
    weth = deployment.address("WETH")
    changed = []
    if not gate.functions.hasRole(APPROVER_ROLE, approver).call():
        writer.transact(gate.functions.grantRole(APPROVER_ROLE, approver))
        changed.append(f"APPROVER_ROLE granted to {approver}")
    if gate.functions.getApprovalThreshold(weth).call() != threshold:
        writer.transact(gate.functions.setApprovalThreshold(weth, threshold))
        changed.append(f"approval threshold {threshold} wei WETH")
    return changed


class ApprovalDesk:
    """Signs a person's decision on a paused settlement with the approver key and logs it.

    Args:
        writer: submits ``approveTrade`` (anyone may; the signature is what counts).
        artifacts: compiled contracts (the gate's ABI).
        deployment: where the gate is.
        log: the attestation log the ``hitl`` entry goes to.
        approver_key: the approver's private key (from its keystore).
    """

    def __init__(
        self,
        writer: ChainWriter,
        artifacts: Artifacts,
        deployment: Deployment,
        log: LogStore,
        approver_key: bytes,
    ) -> None:
        self.writer = writer
        self.log = log
        self.deployment = deployment
        self._key = approver_key
        self.approver = Account.from_key(approver_key).address
        self.gate = contract(
            writer.w3, artifacts, "SettlementGate", deployment.address("SettlementGate")
        )

    def decide(
        self, run_id: str, action_key: str, args: dict[str, Any], approved: bool, note: str
    ) -> dict[str, Any]:
        """Sign, record onchain where the gate needs it, log; return the ``hitl`` payload.

        Idempotent: a decision this run's action already has in the log is
        returned as it is (``already`` True), nothing is signed, sent or logged
        again. An approval the gate already recorded (a crash after
        ``approveTrade`` was mined and before the entry was logged) is logged
        with that transaction, not sent again. The returned dict also says
        whether the gate needs the approval onchain (``needs_approval``); those
        two keys are not part of the logged entry.

        Args:
            run_id: the paused run.
            action_key: the pending action's idempotency key.
            args: the pending settle action's arguments (trade_id, execution_id, gate, chain_id).
            approved: the person's decision.
            note: their note (for a rejection: the reason).

        Raises:
            ApprovalError: the action is not about this deployment's gate, or the gate refused.
        """
        trade_id = int(args["trade_id"])
        earlier = self.logged(run_id, action_key)
        if earlier is not None:
            return self._extra(earlier, trade_id, already=True)
        if Web3.to_checksum_address(args["gate"]) != self.gate.address:
            raise ApprovalError(
                f"run {run_id} settles on gate {args['gate']}, but this deployment's gate is "
                f"{self.gate.address}: decide it with the --home it was started with"
            )
        if not self.gate.functions.hasRole(APPROVER_ROLE, self.approver).call():
            raise ApprovalError(
                f"approver {self.approver} lacks APPROVER_ROLE on {self.gate.address}: "
                "run `vouch deploy` to apply the approval policy"
            )
        payload: dict[str, Any] = {
            "decision": "approved" if approved else "rejected",
            "run_id": run_id,
            "action_key": action_key,
            "trade_id": trade_id,
            "gate": self.gate.address,
            "chain_id": self.deployment.chain_id,
            "note": note,
            "approver": self.approver,
        }
        payload |= self._approve(trade_id) if approved else self._reject(payload)
        self.log.append(bytes.fromhex(str(args["execution_id"])[2:]), "hitl", payload)
        return self._extra(payload, trade_id, already=False)

    def logged(self, run_id: str, action_key: str) -> dict[str, Any] | None:
        """The ``hitl`` payload already logged for this run's action, if any."""
        for entry in self.log.entries():
            p = entry.payload
            if (
                entry.kind == "hitl"
                and p.get("run_id") == run_id
                and p.get("action_key") == action_key
            ):
                return dict(p)
        return None

    def _extra(self, payload: dict[str, Any], trade_id: int, already: bool) -> dict[str, Any]:
        terms = self.gate.functions.getTrade(trade_id).call()
        return {**payload, "already": already, "needs_approval": bool(terms[10])}

    def _approve(self, trade_id: int) -> dict[str, Any]:
        digest = bytes(self.gate.functions.approvalDigest(trade_id).call())
        signature = Account.unsafe_sign_hash(digest, self._key).signature
        terms = self.gate.functions.getTrade(trade_id).call()
        tx_hash, block = None, int(self.writer.w3.eth.block_number)
        if terms[10] and terms[11]:  # approved onchain already: by us, before a crash
            tx_hash, block = self._recorded_approval(trade_id)
        elif terms[10]:  # needsApproval and not yet approved
            receipt = self.writer.transact(self.gate.functions.approveTrade(trade_id, signature))
            tx_hash, block = (
                "0x" + bytes(receipt["transactionHash"]).hex(),
                int(receipt["blockNumber"]),
            )
        return {
            "digest": "0x" + digest.hex(),
            "signature": "0x" + bytes(signature).hex(),
            "tx_hash": tx_hash,
            "block_number": block,
        }

    def _recorded_approval(self, trade_id: int) -> tuple[str, int]:
        """The transaction that recorded ``trade_id``'s approval onchain."""
        events = event_logs(
            self.gate.events.TradeApproved(), self.deployment.block, {"tradeId": trade_id}
        )
        if not events:
            raise ApprovalError(f"trade #{trade_id} is approved onchain but has no TradeApproved")
        return "0x" + bytes(events[-1]["transactionHash"]).hex(), int(events[-1]["blockNumber"])

    def _reject(self, payload: dict[str, Any]) -> dict[str, Any]:
        digest = rejection_digest(payload)
        signature = Account.unsafe_sign_hash(digest, self._key).signature
        return {
            "digest": "0x" + digest.hex(),
            "signature": "0x" + bytes(signature).hex(),
            "tx_hash": None,
            "block_number": self.writer.w3.eth.block_number,
        }
