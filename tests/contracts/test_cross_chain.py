"""A cross-chain message between two anvils with different chain ids, through the chain writer.

Chain A is the session's anvil (31337, the vouch deployment); chain B is a second anvil
(chain id 31338) with its own Forwarder configured with the same DON. A message with a token leg
is sent on A; its MessageSent event (tx hash, log index, nonce, payload) is attested in a
Keystone report signed by f+1 of the DON's node keys and delivered on B through the Forwarder:
the value is released and the receiver called, exactly once. The nodes' keys sign here; a DON
workflow that watches chain A's logs itself is not part of this test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from web3 import Web3
from web3.logs import DISCARD

from cre_adapters.evm import ANVIL_DEV_KEYS, ChainWriter, find_toolchain, start_anvil
from cre_adapters.evm._deploy import contract, deploy_forwarder, deploy_gateway
from verifier import (
    ReportBody,
    ReportMetadata,
    config_digest,
    encode_report,
    execution_id,
    keccak,
    report_context,
    report_digest,
    sign_report,
)

pytestmark = pytest.mark.integration

CHAIN_B = 31_338
ONE = 10**18
MESSAGE = "(uint256,address,bytes32,uint256,address,uint64,address,uint256,bool,bytes)"
EXECUTED, FAILED_STATE = 1, 2


@pytest.fixture(scope="module")
def chain_b() -> Iterator[str]:
    """A second anvil with its own chain id."""
    anvil = start_anvil(find_toolchain(), chain_id=CHAIN_B)
    try:
        yield anvil.url
    finally:
        anvil.stop()


def _stack_b(env: Any, url: str) -> dict[str, Any]:
    """Forwarder (same DON), token, gateway and a MessageSink on chain B."""
    w3 = Web3(Web3.HTTPProvider(url))
    writer = ChainWriter(w3, ANVIL_DEV_KEYS[0], env.writer.decoder)
    assert writer.chain_id == CHAIN_B
    forwarder = deploy_forwarder(writer, env.artifacts, env.deployment.don)
    token_artifact = env.artifacts.get("TestToken")
    token, _ = writer.deploy(token_artifact.abi, token_artifact.bytecode, "Bridged (test)", "BRG")
    wf = env.deployment.workflow.model_copy(update={"owner": writer.address})
    gateway = deploy_gateway(writer, env.artifacts, forwarder, token, wf)
    sink_artifact = env.artifacts.get("MessageSink")
    sink, _ = writer.deploy(sink_artifact.abi, sink_artifact.bytecode)
    writer.transact(
        contract(w3, env.artifacts, "TestToken", token).functions.mint(gateway, 1_000 * ONE)
    )
    return {
        "w3": w3,
        "writer": writer,
        "forwarder": forwarder,
        "gateway": gateway,
        "sink": sink,
        "wf": wf,
    }


def _stack_a(env: Any, dest_gateway_chain: int) -> dict[str, Any]:
    """Token and gateway on chain A, with a bucket towards chain B; the writer holds tokens."""
    writer = env.writer
    token_artifact = env.artifacts.get("TestToken")
    token, _ = writer.deploy(token_artifact.abi, token_artifact.bytecode, "Bridged (test)", "BRG")
    gateway = deploy_gateway(
        writer, env.artifacts, env.deployment.address("Forwarder"), token, env.deployment.workflow
    )
    gw = contract(env.w3, env.artifacts, "CrossChainGateway", gateway)
    writer.transact(gw.functions.setBucket(dest_gateway_chain, 100 * ONE, ONE))
    tok = contract(env.w3, env.artifacts, "TestToken", token)
    writer.transact(tok.functions.mint(writer.address, 10 * ONE))
    writer.transact(tok.functions.approve(gateway, 10 * ONE))
    return {"gateway": gateway, "gw": gw, "token": tok}


def _report(
    env: Any, b: dict[str, Any], message: tuple[Any, ...], round_: int
) -> tuple[bytes, bytes, list[bytes]]:
    """A Keystone report for gateway B attesting ``message``, signed by f+1 node keys."""
    now = b["w3"].eth.get_block("latest")["timestamp"]
    wf, don = b["wf"], env.deployment.don
    metadata = ReportMetadata(
        execution_id=execution_id(bytes.fromhex(wf.id[2:]), keccak(message[2]), round_),
        timestamp=now,
        don_id=don.don_id,
        config_version=don.config_version,
        workflow_id=bytes.fromhex(wf.id[2:]),
        workflow_name=wf.name,
        workflow_owner=wf.owner,
        report_id=b"\x00\x02",
    )
    body = ReportBody(
        chain_id=CHAIN_B,
        receiver=b["gateway"],
        timestamp=now,
        action_hash=bytes(32),
        payload=abi_encode([MESSAGE], [message]),
    )
    raw = encode_report(metadata, body)
    digest = config_digest(
        CHAIN_B, b["forwarder"], don.don_id, don.config_version, don.f, don.signers
    )
    context = report_context(digest, round_)
    sigs = [sign_report(report_digest(raw, context), k) for k in env.node_keys()[: don.f + 1]]
    return raw, context, sigs


def test_message_sent_on_chain_a_executes_once_on_chain_b(evm: Any, chain_b: str) -> None:
    b = _stack_b(evm, chain_b)
    a = _stack_a(evm, CHAIN_B)
    gw_b = contract(b["w3"], evm.artifacts, "CrossChainGateway", b["gateway"])
    b["writer"].transact(gw_b.functions.setSource(evm.deployment.chain_id, a["gateway"]))

    receipt = evm.writer.transact(a["gw"].functions.send(CHAIN_B, b["sink"], b"hello B", 3 * ONE))
    sent = a["gw"].events.MessageSent().process_receipt(receipt, errors=DISCARD)[0]
    assert sent["args"]["nonce"] == 1
    assert a["token"].functions.balanceOf(a["gateway"]).call() == 3 * ONE
    message = (
        evm.deployment.chain_id,
        a["gateway"],
        bytes(receipt["transactionHash"]),
        sent["logIndex"],
        evm.writer.address,
        1,
        b["sink"],
        3 * ONE,
        False,
        b"hello B",
    )

    fwd_b = contract(b["w3"], evm.artifacts, "Forwarder", b["forwarder"])
    raw, context, sigs = _report(evm, b, message, time.time_ns())
    delivered = b["writer"].transact(
        fwd_b.functions.report(b["gateway"], raw, context, sigs), gas=1_500_000
    )
    executed = gw_b.events.MessageExecuted().process_receipt(delivered, errors=DISCARD)
    assert [e["args"]["nonce"] for e in executed] == [1]
    sink = contract(b["w3"], evm.artifacts, "MessageSink", b["sink"])
    assert sink.functions.calls().call() == 1
    assert sink.functions.lastPayload().call() == b"hello B"
    token_b = contract(b["w3"], evm.artifacts, "TestToken", gw_b.functions.token().call())
    assert token_b.functions.balanceOf(b["sink"]).call() == 3 * ONE
    message_id = gw_b.functions.getMessageId(message, CHAIN_B).call()
    assert gw_b.functions.getState(message_id).call() == EXECUTED

    # the same attestation in a fresh report: the gateway refuses it, the forwarder records FAILED
    raw, context, sigs = _report(evm, b, message, time.time_ns())
    again = b["writer"].transact(
        fwd_b.functions.report(b["gateway"], raw, context, sigs), gas=1_500_000
    )
    processed = fwd_b.events.ReportProcessed().process_receipt(again, errors=DISCARD)
    assert [e["args"]["result"] for e in processed] == [False]
    assert sink.functions.calls().call() == 1
