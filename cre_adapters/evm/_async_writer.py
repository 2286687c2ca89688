"""One async transaction writer per chain: nonces, gas margin, resubmission, receipts, reverts.

- **nonces**: handed out under a lock from a local counter, synced from the
  chain's pending count at start and after any nonce error, so concurrent
  ``transact`` calls never collide.
  Another sender on the same key (a sync ``ChainWriter``) only costs a
  resync: a transaction refused for its nonce is re-signed once at the
  chain's pending count.
- **gas**: estimated (a revert at estimation is decoded and raised before
  anything is sent), times ``gas_margin``. **Fees** are EIP-1559
  (``maxFeePerGas`` = 2 x base fee + tip, ``maxPriorityFeePerGas`` = the
  node's suggested tip) on chains with a base fee, legacy ``gasPrice`` elsewhere.
- **resubmission**: if no receipt arrives within ``resubmit_after`` seconds
  the transaction is looked up; if the node dropped it, the same signed bytes
  are sent again; if it is still pending, it is replaced at the same nonce
  with 12.5 % higher fees (the minimum bump nodes accept). At most
  ``max_resubmits`` times, then ``ChainError``.
- **receipts** are awaited up to ``receipt_timeout`` in total; a reverted one is
  replayed as a call at its block to decode the custom error.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eth_account import Account
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TransactionNotFound,
    Web3RPCError,
)

from .._errors import ChainError, ContractRevert
from ._writer import ErrorDecoder, _revert_data

BUMP_NUM, BUMP_DEN = 9, 8  # +12.5 %


class _NonceRefused(ChainError):
    """The node refused the transaction's nonce (another sender used it)."""


class AsyncChainWriter:
    """Signs and sends transactions for one key on one chain, concurrently and safely.

    Args:
        w3: a connected AsyncWeb3.
        private_key: the sender's key.
        decoder: knows the custom errors of the contracts this writer talks to.
        gas_margin: multiplier on the gas estimate.
        receipt_timeout: seconds to wait for a receipt, all resubmissions included.
        resubmit_after: seconds without a receipt before looking for a dropped transaction.
        max_resubmits: how many times to resend or replace one transaction.
    """

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        private_key: bytes | str,
        decoder: ErrorDecoder,
        *,
        gas_margin: float = 1.25,
        receipt_timeout: float = 60.0,
        resubmit_after: float = 6.0,
        max_resubmits: int = 3,
    ) -> None:
        self.w3 = w3
        self._account = Account.from_key(private_key)
        self.decoder = decoder
        self.gas_margin = gas_margin
        self.receipt_timeout = receipt_timeout
        self.resubmit_after = resubmit_after
        self.max_resubmits = max_resubmits
        self._nonce: int | None = None
        self._lock = asyncio.Lock()
        self.resubmissions = 0

    @property
    def address(self) -> str:
        """The sender's address."""
        return str(self._account.address)

    async def transact(self, fn: Any, *, gas: int | None = None, value: int = 0) -> Any:
        """Send contract call ``fn`` (an async web3 ContractFunction) and await its receipt.

        Raises:
            ContractRevert: it reverts at estimation or onchain (custom error decoded).
            ChainError: no receipt within ``receipt_timeout`` despite resubmissions.
        """
        params: dict[str, Any] = {"from": self.address, "value": value}
        try:
            estimate = await fn.estimate_gas(params)
        except (ContractCustomError, ContractLogicError) as exc:
            raise self.decoder.decode(_revert_data(exc)) from None
        params["gas"] = gas or int(estimate * self.gas_margin)
        params["chainId"] = await self.w3.eth.chain_id
        params.update(await self._fees())
        async with self._lock:
            params["nonce"] = await self._next_nonce()
            tx = await fn.build_transaction(params)
            try:
                tx_hash = await self._send(tx)
            except _NonceRefused:  # someone else sent from this key: resync once
                tx["nonce"] = params["nonce"] = await self._next_nonce()
                tx_hash = await self._send(tx)
        receipt = await self._await_receipt(tx, tx_hash)
        if receipt["status"] != 1:
            raise await self._replay_revert(tx, receipt)
        return receipt

    async def _fees(self) -> dict[str, int]:
        """EIP-1559 fees when the chain has a base fee, else the legacy gas price."""
        block = await self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(await self.w3.eth.gas_price)}
        tip = int(await self.w3.eth.max_priority_fee)
        return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}

    async def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = await self.w3.eth.get_transaction_count(self.address, "pending")  # type: ignore[arg-type]
        nonce = self._nonce
        self._nonce += 1
        return nonce

    async def _send(self, tx: dict[str, Any]) -> HexBytes:
        signed = self._account.sign_transaction(tx)
        try:
            return HexBytes(await self.w3.eth.send_raw_transaction(signed.raw_transaction))
        except (ValueError, Web3RPCError) as exc:
            if "nonce" in str(exc).lower():
                self._nonce = None  # resync from the chain on the next transaction
                raise _NonceRefused(
                    f"transaction with nonce {tx['nonce']} rejected: {exc}"
                ) from None
            raise ChainError(f"transaction with nonce {tx['nonce']} rejected: {exc}") from None

    async def _await_receipt(self, tx: dict[str, Any], tx_hash: HexBytes) -> Any:
        deadline = time.monotonic() + self.receipt_timeout
        hashes = [tx_hash]
        for attempt in range(self.max_resubmits + 1):
            receipt = await self._poll(
                hashes, min(deadline, time.monotonic() + self.resubmit_after)
            )
            if receipt is not None:
                return receipt
            if attempt == self.max_resubmits or time.monotonic() >= deadline:
                break
            hashes.append(await self._resubmit(tx, hashes[-1]))
        raise ChainError(
            f"no receipt for nonce {tx['nonce']} ({', '.join('0x' + h.hex() for h in hashes)}) "
            f"within {self.receipt_timeout}s after {len(hashes) - 1} resubmission(s)"
        )

    async def _poll(self, hashes: list[HexBytes], until: float) -> Any:
        while time.monotonic() < until:
            for tx_hash in hashes:
                try:
                    return await self.w3.eth.get_transaction_receipt(tx_hash)
                except TransactionNotFound:
                    continue
            await asyncio.sleep(0.1)
        return None

    async def _resubmit(self, tx: dict[str, Any], last: HexBytes) -> HexBytes:
        """Resend a dropped transaction, or replace a stuck one at a higher gas price."""
        self.resubmissions += 1
        try:
            await self.w3.eth.get_transaction(last)
        except TransactionNotFound:
            return await self._send(tx)  # dropped: the same transaction again
        for fee in ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
            if fee in tx:
                tx[fee] = tx[fee] * BUMP_NUM // BUMP_DEN + 1
        return await self._send(tx)

    async def _replay_revert(self, tx: dict[str, Any], receipt: Any) -> ContractRevert:
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        try:
            await self.w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            return self.decoder.decode(_revert_data(exc))
        return ContractRevert("Reverted", {"tx": "0x" + bytes(receipt["transactionHash"]).hex()})


__all__ = ["AsyncChainWriter"]
