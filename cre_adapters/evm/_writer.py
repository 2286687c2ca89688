"""Send transactions with a local key; decode every revert into its custom error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_typing import ChecksumAddress
from eth_utils import function_abi_to_4byte_selector, to_checksum_address

if TYPE_CHECKING:
    from ._async_writer import AsyncChainWriter
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted
from web3.types import TxReceipt

from .._errors import ChainError, ContractRevert

GAS_MARGIN = 1.25
PANIC = {0x01: "assert", 0x11: "arithmetic overflow", 0x12: "division by zero", 0x32: "array index"}


class ErrorDecoder:
    """Maps 4-byte selectors of custom errors to their names and argument types."""

    def __init__(self, abi_entries: Iterable[dict[str, Any]]) -> None:
        self._errors: dict[bytes, dict[str, Any]] = {}
        for entry in abi_entries:
            if entry.get("type") == "error":
                self._errors[function_abi_to_4byte_selector(entry)] = entry  # type: ignore[arg-type]

    def decode(self, data: bytes | str) -> ContractRevert:
        """Turn revert data into a ContractRevert naming the error and its values."""
        raw = bytes(HexBytes(data)) if data else b""
        selector, args = raw[:4], raw[4:]
        if selector == bytes.fromhex("08c379a0"):
            return ContractRevert("Error", {"message": abi_decode(["string"], args)[0]}, raw.hex())
        if selector == bytes.fromhex("4e487b71"):
            code = abi_decode(["uint256"], args)[0]
            return ContractRevert(
                "Panic", {"code": code, "reason": PANIC.get(code, "?")}, raw.hex()
            )
        entry = self._errors.get(selector)
        if entry is None:
            return ContractRevert("UnknownError", {"data": "0x" + raw.hex()}, raw.hex())
        types = [_abi_type(i) for i in entry["inputs"]]
        values = abi_decode(types, args)
        names = [i["name"] or f"arg{n}" for n, i in enumerate(entry["inputs"])]
        return ContractRevert(
            entry["name"], dict(zip(names, map(_plain, values), strict=True)), raw.hex()
        )


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


class ChainWriter:
    """Signs and sends transactions from one key, waits for receipts, decodes reverts.

    Args:
        w3: a connected Web3.
        private_key: the sender's key.
        decoder: knows the custom errors of every contract this writer talks to.
        receipt_timeout: seconds to wait for a receipt.
    """

    def __init__(
        self,
        w3: Web3,
        private_key: bytes | str,
        decoder: ErrorDecoder,
        receipt_timeout: float = 60.0,
    ) -> None:
        self.w3 = w3
        self._account = Account.from_key(private_key)
        self.decoder = decoder
        self.receipt_timeout = receipt_timeout
        self.chain_id = w3.eth.chain_id

    @property
    def address(self) -> ChecksumAddress:
        """The sender's address."""
        return ChecksumAddress(self._account.address)

    def async_writer(self, **options: Any) -> AsyncChainWriter:
        """An ``AsyncChainWriter`` for the same key, chain (HTTP RPC) and errors.

        Its AsyncWeb3 session is new (it belongs to the caller's event loop);
        its nonces are not: every async writer for this chain and key shares
        the process-wide ``NonceBook`` (``AsyncChainWriter.nonces``).
        Close its provider (``await writer.w3.provider.disconnect()``) on the
        event loop that used it.

        Raises:
            ChainError: this writer's provider is not an HTTP RPC.
        """
        from web3 import AsyncHTTPProvider, AsyncWeb3

        from ._async_writer import AsyncChainWriter, NonceBook

        url = getattr(self.w3.provider, "endpoint_uri", None)
        if not url:
            raise ChainError("an async writer needs an HTTP RPC URL; this writer has none")
        w3 = AsyncWeb3(AsyncHTTPProvider(str(url)))
        options.setdefault("nonces", NonceBook.for_sender(self.chain_id, self.address))
        return AsyncChainWriter(w3, self._account.key, self.decoder, **options)

    def deploy(self, abi: list[dict[str, Any]], bytecode: str, *args: Any) -> tuple[str, TxReceipt]:
        """Deploy a contract and return its address and the receipt."""
        contract = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        receipt = self._send(contract.constructor(*args))
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deployment {receipt['transactionHash'].hex()} created no contract")
        return to_checksum_address(address), receipt

    def send_value(self, to: str, wei: int) -> TxReceipt:
        """Send ``wei`` of the native coin to ``to`` and wait for the receipt."""
        tx: dict[str, Any] = {
            "to": to,
            "value": wei,
            "gas": 21_000,
            "gasPrice": self.w3.eth.gas_price,
            "nonce": self.w3.eth.get_transaction_count(self.address, "pending"),
            "chainId": self.chain_id,
        }
        signed = self._account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)

    def transact(self, fn: ContractFunction, *, gas: int | None = None) -> TxReceipt:
        """Send ``fn`` as a transaction; raise ContractRevert if it reverts.

        Raises:
            ContractRevert: if the call would revert (checked first) or did revert.
            ChainError: if no receipt arrives in time.
        """
        return self._send(fn, gas=gas)

    def transact_data(self, to: str, data: bytes, *, gas: int | None = None) -> TxReceipt:
        """Send calldata the caller built (for example a call with bytes appended) to ``to``.

        Raises:
            ContractRevert: if the call would revert (checked first) or did revert.
            ChainError: if no receipt arrives in time.
        """
        tx: dict[str, Any] = {
            "from": self.address,
            "to": to_checksum_address(to),
            "data": HexBytes(data),
            "value": 0,
            "chainId": self.chain_id,
        }
        try:
            estimate = self.w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            raise self.decoder.decode(_revert_data(exc)) from None
        tx["gas"] = gas or int(estimate * GAS_MARGIN)
        tx["gasPrice"] = self.w3.eth.gas_price
        tx["nonce"] = self.w3.eth.get_transaction_count(self.address, "pending")
        return self._sign_and_wait(tx)

    def _send(self, fn: Any, gas: int | None = None) -> TxReceipt:
        params: dict[str, Any] = {"from": self.address, "chainId": self.chain_id}
        try:
            estimate = fn.estimate_gas(params)
        except (ContractCustomError, ContractLogicError) as exc:
            raise self.decoder.decode(_revert_data(exc)) from None
        params["gas"] = gas or int(estimate * GAS_MARGIN)
        params["nonce"] = self.w3.eth.get_transaction_count(self.address, "pending")
        return self._sign_and_wait(fn.build_transaction(params))

    def _sign_and_wait(self, tx: dict[str, Any]) -> TxReceipt:
        signed = self._account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout
            )
        except TimeExhausted:
            raise ChainError(
                f"no receipt for {tx_hash.hex()} within {self.receipt_timeout}s"
            ) from None
        if receipt["status"] != 1:
            raise self._replay_revert(tx, receipt)
        return receipt

    def _replay_revert(self, tx: dict[str, Any], receipt: TxReceipt) -> ContractRevert:
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            return self.decoder.decode(_revert_data(exc))
        return ContractRevert("Reverted", {"tx": receipt["transactionHash"].hex()})


def _revert_data(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, str) else ""
