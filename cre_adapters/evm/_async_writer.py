"""One async transaction writer per chain: nonces, gas margin, resubmission, receipts, reverts.

- **nonces**: owned by one ``NonceBook`` per (chain id, sender) in the
  process, shared by every writer for that key whatever event loop it runs
  on (an AsyncWeb3 session belongs to one loop; the book does not). Nonces
  are handed out under a thread lock: from the book's counter while any of
  its transactions is in flight, from the chain's pending count when none
  is (so a sync ``ChainWriter`` on the same key, a restart or a rolled-back
  chain costs nothing). A transaction refused for its nonce (another sender
  took it while ours were in flight) is re-signed once at a resynced nonce.
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
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

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


class NonceBook:
    """The nonce state of one sender on one chain, shared by all its writers in the process.

    Thread-safe: writers on different event loops reserve from the same book.
    ``in_flight`` maps each reserved nonce to its latest transaction hash
    (None until sent) until its receipt arrives or it fails.

    Args:
        chain_id: the chain.
        address: the sender.
    """

    _books: ClassVar[dict[tuple[int, str], NonceBook]] = {}
    _books_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, chain_id: int, address: str) -> None:
        self.chain_id = chain_id
        self.address = address
        self.in_flight: dict[int, HexBytes | None] = {}
        self.resyncs = 0  # nonces refused by the node and re-reserved
        self._next: int | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_sender(cls, chain_id: int, address: str) -> NonceBook:
        """The process-wide book of ``address`` on ``chain_id`` (created on first use)."""
        key = (int(chain_id), address.lower())
        with cls._books_lock:
            return cls._books.setdefault(key, cls(int(chain_id), address))

    async def reserve(self, pending_count: Callable[[], Awaitable[int]]) -> int:
        """The next nonce: the counter while busy, else the chain's ``pending_count()``."""
        with self._lock:
            if self.in_flight:
                return self._take()
        count = await pending_count()  # never await while holding the thread lock
        with self._lock:
            if not self.in_flight:  # nobody reserved meanwhile: trust the chain
                self._next = count
            return self._take()

    async def resync(self, refused: int, pending_count: Callable[[], Awaitable[int]]) -> int:
        """Give back ``refused`` (another sender used it) and reserve above the chain and ours."""
        self.release(refused)
        count = await pending_count()
        with self._lock:
            self.resyncs += 1
            self._next = max(count, max(self.in_flight, default=-1) + 1)
            return self._take()

    def sent(self, nonce: int, tx_hash: HexBytes) -> None:
        """Record ``tx_hash`` as the latest transaction at ``nonce``."""
        with self._lock:
            self.in_flight[nonce] = tx_hash

    def release(self, nonce: int) -> None:
        """``nonce`` is done (mined, or failed): no longer in flight; unsent, it is reused."""
        with self._lock:
            if self.in_flight.pop(nonce, 0) is None and self._next == nonce + 1:
                self._next = nonce
            if not self.in_flight:
                self._next = None  # idle: the next reservation reads the chain

    def _take(self) -> int:
        assert self._next is not None
        nonce, self._next = self._next, self._next + 1
        self.in_flight[nonce] = None
        return nonce


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
        nonces: the sender's ``NonceBook`` (default: the process-wide one for
            this chain and key, looked up on the first transaction).
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
        nonces: NonceBook | None = None,
    ) -> None:
        self.w3 = w3
        self._account = Account.from_key(private_key)
        self.decoder = decoder
        self.gas_margin = gas_margin
        self.receipt_timeout = receipt_timeout
        self.resubmit_after = resubmit_after
        self.max_resubmits = max_resubmits
        self.nonces = nonces
        self._lock = asyncio.Lock()  # this writer sends in nonce order
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
        book = self._book(params["chainId"])
        async with self._lock:
            tx, tx_hash = await self._submit(fn, params, book)
        try:
            receipt = await self._await_receipt(tx, tx_hash, book)
        finally:
            book.release(tx["nonce"])
        if receipt["status"] != 1:
            raise await self._replay_revert(tx, receipt)
        return receipt

    def _book(self, chain_id: int) -> NonceBook:
        if self.nonces is None:
            self.nonces = NonceBook.for_sender(chain_id, self.address)
        return self.nonces

    async def _submit(
        self, fn: Any, params: dict[str, Any], book: NonceBook
    ) -> tuple[dict[str, Any], HexBytes]:
        """Reserve a nonce, sign and send; a nonce taken by another sender is resynced once."""
        params["nonce"] = await book.reserve(self._pending_count)
        try:
            tx = await fn.build_transaction(params)
            try:
                tx_hash = await self._send(tx)
            except _NonceRefused:
                tx["nonce"] = params["nonce"] = await book.resync(
                    params["nonce"], self._pending_count
                )
                tx_hash = await self._send(tx)
        except BaseException:
            book.release(params["nonce"])
            raise
        book.sent(tx["nonce"], tx_hash)
        return tx, tx_hash

    async def _pending_count(self) -> int:
        return int(await self.w3.eth.get_transaction_count(self.address, "pending"))  # type: ignore[arg-type]

    async def _fees(self) -> dict[str, int]:
        """EIP-1559 fees when the chain has a base fee, else the legacy gas price."""
        block = await self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(await self.w3.eth.gas_price)}
        tip = int(await self.w3.eth.max_priority_fee)
        return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}

    async def _send(self, tx: dict[str, Any]) -> HexBytes:
        signed = self._account.sign_transaction(tx)
        try:
            return HexBytes(await self.w3.eth.send_raw_transaction(signed.raw_transaction))
        except (ValueError, Web3RPCError) as exc:
            if "nonce" in str(exc).lower():
                raise _NonceRefused(
                    f"transaction with nonce {tx['nonce']} rejected: {exc}"
                ) from None
            raise ChainError(f"transaction with nonce {tx['nonce']} rejected: {exc}") from None

    async def _await_receipt(self, tx: dict[str, Any], tx_hash: HexBytes, book: NonceBook) -> Any:
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
            book.sent(tx["nonce"], hashes[-1])
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


__all__ = ["AsyncChainWriter", "NonceBook"]
