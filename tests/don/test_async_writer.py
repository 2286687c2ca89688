"""The async chain writer on anvil: concurrent nonces, decoded reverts, dropped and stuck transactions."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from web3 import AsyncHTTPProvider, AsyncWeb3

from vouch.cre_adapters import ChainError, ContractRevert
from vouch.cre_adapters.evm import (
    ANVIL_DEV_KEYS,
    AsyncChainWriter,
    ChainWriter,
    ErrorDecoder,
    NonceBook,
)

pytestmark = pytest.mark.integration

ONE = 10**18


def rpc(env: Any, method: str, *params: Any) -> Any:
    return env.w3.provider.make_request(method, list(params))


async def setup(env: Any, **kwargs: Any) -> tuple[AsyncChainWriter, Any, Any]:
    w3 = AsyncWeb3(AsyncHTTPProvider(env.chain.url))
    writer = AsyncChainWriter(
        w3, ANVIL_DEV_KEYS[0], ErrorDecoder(env.artifacts.all_abis()), **kwargs
    )
    weth = w3.eth.contract(
        address=env.deployment.address("WETH"), abi=env.artifacts.get("TestToken").abi
    )
    gate = w3.eth.contract(
        address=env.deployment.address("SettlementGate"),
        abi=env.artifacts.get("SettlementGate").abi,
    )
    return writer, weth, gate


def test_concurrent_transactions_get_distinct_nonces_and_all_land(evm: Any) -> None:
    async def scenario() -> list[Any]:
        writer, weth, _ = await setup(evm)
        try:
            return await asyncio.gather(
                *(writer.transact(weth.functions.mint(writer.address, i + 1)) for i in range(6))
            )
        finally:
            await writer.w3.provider.disconnect()

    receipts = asyncio.run(scenario())
    assert all(r["status"] == 1 for r in receipts)
    nonces = [evm.w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts]
    assert len(set(nonces)) == 6 and max(nonces) - min(nonces) == 5


def test_revert_is_decoded_into_the_custom_error_before_sending(evm: Any) -> None:
    nonce = evm.w3.eth.get_transaction_count(evm.writer.address)

    async def scenario() -> None:
        writer, _, gate = await setup(evm)
        try:
            await writer.transact(gate.functions.refund(999))
        finally:
            await writer.w3.provider.disconnect()

    with pytest.raises(ContractRevert) as info:
        asyncio.run(scenario())
    assert info.value.name == "UnknownTrade" and info.value.args_ == {"tradeId": 999}
    assert evm.w3.eth.get_transaction_count(evm.writer.address) == nonce


@pytest.mark.parametrize("how", ["dropped", "stuck"])
def test_dropped_or_stuck_transaction_is_resubmitted_and_lands(evm: Any, how: str) -> None:
    async def scenario() -> tuple[Any, int]:
        writer, weth, _ = await setup(evm, resubmit_after=0.4, receipt_timeout=20)
        rpc(evm, "evm_setAutomine", False)
        try:
            task = asyncio.create_task(writer.transact(weth.functions.mint(writer.address, ONE)))
            await asyncio.sleep(0.2)
            if how == "dropped":
                rpc(evm, "anvil_dropAllTransactions")
            while writer.resubmissions == 0:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            rpc(evm, "evm_mine")
            return await asyncio.wait_for(task, 15), writer.resubmissions
        finally:
            rpc(evm, "evm_setAutomine", True)
            await writer.w3.provider.disconnect()

    receipt, resubmissions = asyncio.run(scenario())
    assert receipt["status"] == 1 and resubmissions >= 1
    tx = evm.w3.eth.get_transaction(receipt["transactionHash"])
    if how == "stuck":
        assert tx["gasPrice"] > evm.w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"]


def test_settlement_goes_through_the_async_writer_with_eip1559_fees(
    evm: Any, tmp_path: Any
) -> None:
    from vouch.verifier import AttestationLog

    from ..integration.helpers import open_trade, run_job

    log = AttestationLog(tmp_path / "log.db")
    trade_id, digest = open_trade(evm, log)
    outcome = run_job(evm, log, trade_id, digest)
    assert outcome.status == "settled", outcome.error
    tx = evm.w3.eth.get_transaction(outcome.tx_hash)
    assert int(tx["type"]) == 2 and tx["maxFeePerGas"] >= tx["maxPriorityFeePerGas"] > 0
    # the receiver's gas is provisioned on top of the forwarder's own estimate
    assert tx["gas"] > outcome.gas_used * 1.2


def test_async_writer_resyncs_when_another_sender_used_its_nonce(evm: Any) -> None:
    async def scenario() -> tuple[Any, int]:
        writer, weth, _ = await setup(evm)
        try:
            await writer.transact(weth.functions.mint(writer.address, 1))
            book = writer.nonces
            assert book is not None and not book.in_flight
            resyncs = book.resyncs

            async def pending() -> int:
                return evm.w3.eth.get_transaction_count(writer.address, "pending")

            held = await book.reserve(pending)  # another submission of this process, in flight
            sync_weth = evm.contract("TestToken", weth.address)
            for _ in range(2):  # the sync writer, same key, takes the held nonce and the next
                evm.writer.transact(sync_weth.functions.mint(writer.address, 1))
            receipt = await writer.transact(weth.functions.mint(writer.address, 2))
            book.release(held)
            return receipt, book.resyncs - resyncs
        finally:
            await writer.w3.provider.disconnect()

    receipt, resyncs = asyncio.run(scenario())
    assert receipt["status"] == 1 and resyncs == 1


def test_writers_on_two_event_loops_share_one_nonce_book(evm: Any) -> None:
    address = evm.writer.address
    book = NonceBook.for_sender(evm.w3.eth.chain_id, address)
    resyncs, first = book.resyncs, evm.w3.eth.get_transaction_count(address, "pending")
    start, receipts, books = threading.Barrier(2), [], []

    async def send(amount: int) -> None:
        writer, weth, _ = await setup(evm)
        try:
            start.wait(5)
            receipts.append(await writer.transact(weth.functions.mint(writer.address, amount)))
            books.append(writer.nonces)
        finally:
            await writer.w3.provider.disconnect()

    rpc(evm, "evm_setAutomine", False)  # both in flight at once: the counter, not the chain
    try:
        threads = [threading.Thread(target=asyncio.run, args=(send(n),)) for n in (1, 2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while sum(h is not None for h in book.in_flight.values()) < 2:
            assert time.monotonic() < deadline, book.in_flight
            time.sleep(0.05)
        rpc(evm, "evm_mine")
        for t in threads:
            t.join(15)
    finally:
        rpc(evm, "evm_setAutomine", True)
    assert len(receipts) == 2 and all(r["status"] == 1 for r in receipts)
    nonces = sorted(evm.w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts)
    assert nonces == [first, first + 1]
    assert books == [book, book] and books[0] is books[1] is book
    assert book.resyncs == resyncs and not book.in_flight


def test_settlements_in_a_row_share_one_nonce_book(
    evm: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vouch.verifier import AttestationLog

    from ..integration.helpers import open_trade, run_job

    writers: list[AsyncChainWriter] = []
    make = ChainWriter.async_writer

    def spy(self: ChainWriter, **options: Any) -> AsyncChainWriter:
        writers.append(make(self, **options))
        return writers[-1]

    monkeypatch.setattr(ChainWriter, "async_writer", spy)
    log = AttestationLog(tmp_path / "log.db")
    for _ in range(2):  # each run on its own event loop (asyncio.run)
        outcome = run_job(evm, log, *open_trade(evm, log))
        assert outcome.status == "settled", outcome.error
    assert len(writers) == 2 and writers[0] is not writers[1]
    assert writers[0].nonces is writers[1].nonces
    assert writers[0].nonces is NonceBook.for_sender(evm.w3.eth.chain_id, evm.writer.address)


def test_gas_is_the_estimate_times_the_margin(evm: Any) -> None:
    async def scenario() -> tuple[Any, int]:
        writer, weth, _ = await setup(evm, gas_margin=1.5)
        try:
            call = weth.functions.mint(writer.address, ONE)
            estimate = await call.estimate_gas({"from": writer.address})
            return await writer.transact(call), estimate
        finally:
            await writer.w3.provider.disconnect()

    receipt, estimate = asyncio.run(scenario())
    assert evm.w3.eth.get_transaction(receipt["transactionHash"])["gas"] == int(estimate * 1.5)


def test_no_receipt_within_the_timeout_is_a_chain_error_naming_the_nonce(evm: Any) -> None:
    async def scenario() -> None:
        writer, weth, _ = await setup(evm, resubmit_after=0.3, receipt_timeout=1.0)
        rpc(evm, "evm_setAutomine", False)
        try:
            await writer.transact(weth.functions.mint(writer.address, ONE))
        finally:
            rpc(evm, "anvil_dropAllTransactions")
            rpc(evm, "evm_setAutomine", True)
            await writer.w3.provider.disconnect()

    nonce = evm.w3.eth.get_transaction_count(evm.writer.address)
    started = time.monotonic()
    with pytest.raises(ChainError, match=f"no receipt for nonce {nonce} .* within 1.0s after"):
        asyncio.run(scenario())
    assert time.monotonic() - started < 5
    assert evm.w3.eth.get_transaction_count(evm.writer.address) == nonce  # nothing landed
