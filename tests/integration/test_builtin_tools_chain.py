"""The built-in ``evm_read`` tool against the session's real anvil and deployed test tokens.

Each value asserted is put on the chain by the test (a mint, a transfer, an
approval, an ETH payment) and read back through the tool, most of them by an
agent whose model asks for the read as a tool call.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from vouch.agents import Agent, ChatModel, Message, ModelReply, ToolCall, ToolSpec, evm_read_tool

pytestmark = pytest.mark.integration

TRANSFER = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix("0x")


class Reader(ChatModel):
    """Asks for the given reads one after the other, then answers with every observation."""

    name = "reader"

    def __init__(self, *reads: dict[str, Any]) -> None:
        self.reads = list(reads)

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        done = [m for m in messages if m.role == "tool"]
        if len(done) < len(self.reads):
            call = ToolCall(id=f"r{len(done)}", name="evm_read", arguments=self.reads[len(done)])
            return ModelReply(tool_calls=[call])
        return ModelReply(content=json.dumps([json.loads(m.content) for m in done]))


def read_in_agent(url: str, *reads: dict[str, Any]) -> list[Any]:
    """What an agent observed for ``reads``, through the tool and the agent loop."""
    result = asyncio.run(
        Agent("reader", model=Reader(*reads), tools=[evm_read_tool(url)]).run("read")
    )
    assert [e.kind for e in result.trace].count("tool") == len(reads), result.trace
    observed: list[Any] = json.loads(result.answer)
    return observed


def token(evm, symbol: str) -> Any:
    """The deployed test token ``symbol`` (a TestToken)."""
    return evm.contract("TestToken", evm.deployment.address(symbol))


def word(address: str) -> str:
    """An address as a 32-byte log topic."""
    return "0x" + address.lower().removeprefix("0x").rjust(64, "0")


def test_an_agent_reads_balances_allowances_and_logs_from_the_chain(evm) -> None:
    w3, writer = evm.w3, evm.writer
    weth, usdc = token(evm, "WETH"), token(evm, "USDC")
    alice, bob = Account.create().address, Account.create().address
    start = w3.eth.block_number + 1
    writer.transact(weth.functions.mint(writer.address, 7 * 10**18))
    writer.transact(weth.functions.transfer(alice, 3 * 10**18))
    writer.transact(usdc.functions.approve(bob, 1234))
    paid = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": bob, "value": 5 * 10**15})
    w3.eth.wait_for_transaction_receipt(paid)

    chain_id, eth, balance, allowance, logs = read_in_agent(
        evm.chain.url,
        {"method": "eth_chainId"},
        {"method": "eth_getBalance", "address": bob},
        {
            "method": "eth_call",
            "address": weth.address,
            "function": "balanceOf(address)",
            "args": [alice],
            "returns": ["uint256"],
        },
        {
            "method": "eth_call",
            "address": usdc.address,
            "function": "allowance(address,address)",
            "args": [writer.address, bob],
            "returns": ["uint256"],
        },
        {
            "method": "eth_getLogs",
            "address": weth.address,
            "topics": [TRANSFER, None, word(alice)],
            "from_block": hex(start),
        },
    )
    assert chain_id["int"] == evm.chain.chain_id == w3.eth.chain_id
    assert eth["int"] == 5 * 10**15 == w3.eth.get_balance(bob)
    assert balance["values"] == [3 * 10**18] == [weth.functions.balanceOf(alice).call()]
    assert allowance["values"] == [1234]
    [log] = logs["result"]
    assert log["topics"][1] == word(writer.address) and int(log["data"], 16) == 3 * 10**18


def test_raw_calldata_and_code_read_the_same_chain(evm) -> None:
    weth = token(evm, "WETH")
    tool = evm_read_tool(evm.chain.url)
    data = weth.encode_abi("totalSupply", [])
    call = tool.parse(
        ToolCall(
            id="1",
            name="evm_read",
            arguments={"method": "eth_call", "address": weth.address, "data": data},
        )
    )
    supply = asyncio.run(tool.fn(call))["result"]
    assert int(supply, 16) == weth.functions.totalSupply().call()
    code = tool.parse(
        ToolCall(
            id="2", name="evm_read", arguments={"method": "eth_getCode", "address": weth.address}
        )
    )
    assert len(asyncio.run(tool.fn(code))["result"]) > 2  # deployed bytecode, not "0x"


def test_a_write_is_refused_and_moves_nothing(evm) -> None:
    w3, writer = evm.w3, evm.writer
    weth = token(evm, "WETH")
    writer.transact(weth.functions.mint(writer.address, 10**18))
    sender, target = w3.eth.accounts[0], Account.create().address
    nonce = w3.eth.get_transaction_count(sender)
    for method in ("eth_sendTransaction", "eth_sendRawTransaction", "anvil_setBalance"):
        call = ToolCall(id="w", name="evm_read", arguments={"method": method, "address": target})
        result = asyncio.run(
            Agent("w", model=_Once(call), tools=[evm_read_tool(evm.chain.url)]).run("pay")
        )
        assert result.trace[1].kind == "invalid_arguments", result.trace
        assert "invalid arguments for evm_read" in result.answer and "method" in result.answer
    # a state-changing function through eth_call is only simulated, from no sender: it
    # reverts (ERC20InvalidSender(0)), the agent hears why, nothing moves
    transfer = {
        "method": "eth_call",
        "address": weth.address,
        "function": "transfer(address,uint256)",
        "args": [target, 10**18],
        "returns": ["bool"],
    }
    call = ToolCall(id="t", name="evm_read", arguments=transfer)
    result = asyncio.run(
        Agent("w", model=_Once(call), tools=[evm_read_tool(evm.chain.url)]).run("pay")
    )
    assert result.trace[1].kind == "tool_error"
    assert "execution reverted" in result.answer and "0x96c6fd1e" in result.answer
    assert weth.functions.balanceOf(target).call() == 0
    assert w3.eth.get_balance(target) == 0
    assert w3.eth.get_transaction_count(sender) == nonce


class _Once(ChatModel):
    """Makes one tool call, then repeats what it observed."""

    def __init__(self, call: ToolCall) -> None:
        self.call = call

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        if messages[-1].role == "tool":
            return ModelReply(content=messages[-1].content)
        return ModelReply(tool_calls=[self.call])
