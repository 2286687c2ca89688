"""A cross-chain message between two anvils with different chain ids, through the chain writer.

Chain A is the session's anvil (31337, the vouch deployment); chain B is a second anvil
(chain id 31338) with its own Forwarder configured with the same DON. A message with a token leg
is sent on A; its MessageSent event (tx hash, log index, nonce, payload) is attested in a
Keystone report signed by f+1 of the DON's node keys and delivered on B through the Forwarder:
the value is released and the receiver called, exactly once. The first test signs with the
nodes' keys directly; the relay tests run the DON itself: an EVM-log trigger on gateway A's
MessageSent, every node reading the event from chain A, identical consensus on its hash, f+1
nodes signing a report for chain B, delivered through chain B's forwarder.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from web3 import Web3
from web3.logs import DISCARD

from vouch._resources import toolchain
from vouch.cre_adapters import (
    ChainTarget,
    DonConfig,
    DonSupervisor,
    EvmQuery,
    MessageRelay,
    QuorumNotReached,
    SourceSpec,
    attested_value,
    encode_message,
    message_from_log,
)
from vouch.cre_adapters._messages import MESSAGE, message_id
from vouch.cre_adapters.evm import (
    ANVIL_DEV_KEYS,
    ChainWriter,
    contract,
    deploy_forwarder,
    deploy_gateway,
    free_port,
    start_anvil,
)
from vouch.verifier import (
    AttestationLog,
    ReportBody,
    ReportMetadata,
    Web3ChainReader,
    audit,
    config_digest,
    encode_report,
    execution_id,
    keccak,
    report_context,
    report_digest,
    sign_report,
)

from ..conftest import PASSWORD

pytestmark = pytest.mark.integration

CHAIN_B = 31_338
CHAIN_C = 31_339  # a third chain gateway A also sends to; no anvil needed, its messages must stay unrelayed
ONE = 10**18
EXECUTED, FAILED_STATE = 1, 2


@pytest.fixture(scope="module")
def chain_b() -> Iterator[str]:
    """A second anvil with its own chain id."""
    anvil = start_anvil(toolchain(), chain_id=CHAIN_B)
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
    gateway = deploy_gateway(writer, env.artifacts, forwarder, token, wf, don=env.deployment.don)
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
        writer,
        env.artifacts,
        env.deployment.address("Forwarder"),
        token,
        env.deployment.workflow,
        don=env.deployment.don,
    )
    gw = contract(env.w3, env.artifacts, "CrossChainGateway", gateway)
    writer.transact(gw.functions.setBucket(dest_gateway_chain, 100 * ONE, ONE))
    writer.transact(gw.functions.setBucket(CHAIN_C, 100 * ONE, ONE))
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


def _trust(env: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    """Gateway B trusts gateway A and releases up to 100 units for A's messages; B's contract."""
    gw_b = contract(b["w3"], env.artifacts, "CrossChainGateway", b["gateway"])
    b["writer"].transact(gw_b.functions.setSource(env.deployment.chain_id, a["gateway"]))
    b["writer"].transact(gw_b.functions.setInboundBucket(env.deployment.chain_id, 100 * ONE, ONE))
    return gw_b


def _send(
    env: Any, a: dict[str, Any], b: dict[str, Any], data: bytes, amount: int, dest: int = CHAIN_B
) -> tuple[Any, ...]:
    """Send ``data`` with ``amount`` from gateway A to B's sink; the message read from the event."""
    receipt = env.writer.transact(a["gw"].functions.send(dest, b["sink"], data, amount))
    sent = a["gw"].events.MessageSent().process_receipt(receipt, errors=DISCARD)[0]
    raw_log = next(e for e in receipt["logs"] if e["logIndex"] == sent["logIndex"])
    return message_from_log(env.deployment.chain_id, raw_log)


def test_message_sent_on_chain_a_executes_once_on_chain_b(evm: Any, chain_b: str) -> None:
    b = _stack_b(evm, chain_b)
    a = _stack_a(evm, CHAIN_B)
    gw_b = _trust(evm, a, b)

    message = _send(evm, a, b, b"hello B", 3 * ONE)
    assert message[5] == CHAIN_B and message[6] == 1  # addressed to B, the first nonce of that lane
    assert a["token"].functions.balanceOf(a["gateway"]).call() == 3 * ONE

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
    onchain_id = gw_b.functions.getMessageId(message).call()
    assert onchain_id == message_id(message)  # the python formula is the contract's
    assert gw_b.functions.getState(onchain_id).call() == EXECUTED

    # the same attestation in a fresh report: the gateway refuses it, the forwarder records FAILED
    raw, context, sigs = _report(evm, b, message, time.time_ns())
    again = b["writer"].transact(
        fwd_b.functions.report(b["gateway"], raw, context, sigs), gas=1_500_000
    )
    processed = fwd_b.events.ReportProcessed().process_receipt(again, errors=DISCARD)
    assert [e["args"]["result"] for e in processed] == [False]
    assert sink.functions.calls().call() == 1


def _relay_don(env: Any, home: Path, gateway_a: str, forwarder_b: str) -> DonConfig:
    """The session DON's keys on new ports, each node reading gateway A's messages from chain A."""
    source = SourceSpec(
        kind="evm",
        rpc_url=env.chain.url,
        evm={"MSG/A": EvmQuery(kind="message", address=gateway_a)},
    )
    nodes = [n.model_copy(update={"port": free_port(), "source": source}) for n in env.don.nodes]
    return env.don.model_copy(
        update={
            "nodes": nodes,
            "targets": [ChainTarget(chain_id=CHAIN_B, forwarder=forwarder_b)],
            "admin_token_file": None,
        }
    )


def test_evm_log_trigger_on_chain_a_makes_the_don_attest_and_deliver_on_chain_b(
    evm: Any, chain_b: str, tmp_path: Path
) -> None:
    b = _stack_b(evm, chain_b)
    a = _stack_a(evm, CHAIN_B)
    gw_b = _trust(evm, a, b)
    don = _relay_don(evm, tmp_path, a["gateway"], b["forwarder"])
    don.save(tmp_path / "don.json")
    (tmp_path / "password").write_text(PASSWORD)
    launcher = [sys.executable, "-m", "vouch", "node", "run", "--password-file"]
    supervisor = DonSupervisor(
        don, tmp_path / "don.json", tmp_path / "run", [*launcher, str(tmp_path / "password")]
    )
    log = AttestationLog(tmp_path / "relay.db")
    relay = MessageRelay(
        don,
        source_rpc=evm.chain.url,
        source_gateway=a["gateway"],
        feed="MSG/A",
        dest_writer=b["writer"],
        dest_forwarder=b["forwarder"],
        dest_gateway=b["gateway"],
        workflow=b["wf"],
        artifacts=evm.artifacts,
        log=log,
        timeout=5,
        poll=0.1,
    )

    async def scenario() -> list[dict[str, Any]]:
        task = asyncio.create_task(relay.run(max_firings=1, wait=60))
        await asyncio.sleep(0.5)  # the relay watches from the current block on
        # a message for chain C first: B's relay must not take it (it would pay out on B too)
        other = a["gw"].functions.send(CHAIN_C, b["sink"], b"for chain C", ONE)
        await asyncio.to_thread(evm.writer.transact, other)
        send = a["gw"].functions.send(CHAIN_B, b["sink"], b"via the DON", 2 * ONE)
        await asyncio.to_thread(evm.writer.transact, send)
        return await task

    supervisor.start()
    try:
        [outcome] = asyncio.run(scenario())
    finally:
        supervisor.stop()
    assert outcome["status"] == "delivered" and outcome["nonce"] == 1
    assert outcome["message"] == "executed"  # the relay's gas left the receiver its full limit
    sink = contract(b["w3"], evm.artifacts, "MessageSink", b["sink"])
    assert sink.functions.calls().call() == 1
    assert sink.functions.lastPayload().call() == b"via the DON"
    executed = gw_b.events.MessageExecuted().get_logs(from_block=0)
    assert [e["args"]["nonce"] for e in executed] == [1]
    kinds = [e.kind for e in log.entries()]
    assert kinds == ["observations", "consensus", "report", "submission"]
    observations = next(log.entries()).payload["observations"]
    assert len({o["observation"]["node"] for o in observations}) == don.quorum
    assert len({o["observation"]["value"] for o in observations}) == 1  # identical
    # an auditor with chain B's RPC re-verifies the relay: signers per B's forwarder config,
    # the identical consensus, the message report's hash, the delivery and its event
    reader = Web3ChainReader(b["w3"])
    audited = audit(log, reader, forwarder=b["forwarder"], gateway=b["gateway"])
    assert audited.ok, audited.failures
    checks = {f.check for f in audited.results if f.status == "ok"}
    assert {"consensus recomputed", "report contents", "report signatures", "transaction"} <= checks

    # a message executed on chain B that no logged round explains (f+1 node keys, no DON round):
    # the forwarder's ReportProcessed and the gateway's MessageExecuted are both alarms
    message = _send(evm, a, b, b"outside the log", ONE)
    raw, context, sigs = _report(evm, b, message, time.time_ns())
    fwd_b = contract(b["w3"], evm.artifacts, "Forwarder", b["forwarder"])
    forged = b["writer"].transact(
        fwd_b.functions.report(b["gateway"], raw, context, sigs), gas=1_500_000
    )
    tx = "0x" + bytes(forged["transactionHash"]).hex()
    found = audit(log, reader, forwarder=b["forwarder"], gateway=b["gateway"])
    alarms = [f.detail for f in found.failures if f.check == "explained by the log"]
    assert len(alarms) == 2 and all(a.startswith("ALARM") and tx in a for a in alarms), alarms
    assert any("MessageExecuted of message" in a for a in alarms)
    assert all(f.check == "explained by the log" for f in found.failures)  # the log itself is fine


def test_nodes_refuse_an_attested_payload_that_is_not_the_event_they_read(
    evm: Any, chain_b: str, tmp_path: Path
) -> None:
    """A coordinator swapping the message: every node reads the event itself and refuses."""
    from vouch.cre_adapters import Coordinator, FieldObservations, ObserveRequest, ReportSignRequest

    b = _stack_b(evm, chain_b)
    a = _stack_a(evm, CHAIN_B)
    don = _relay_don(evm, tmp_path, a["gateway"], b["forwarder"])
    don.save(tmp_path / "don.json")
    (tmp_path / "password").write_text(PASSWORD)
    launcher = [sys.executable, "-m", "vouch", "node", "run", "--password-file"]
    supervisor = DonSupervisor(
        don, tmp_path / "don.json", tmp_path / "run", [*launcher, str(tmp_path / "password")]
    )
    receipt = evm.writer.transact(a["gw"].functions.send(CHAIN_B, b["sink"], b"real", ONE))
    sent = a["gw"].events.MessageSent().process_receipt(receipt, errors=DISCARD)[0]
    ref = f"0x{bytes(receipt['transactionHash']).hex()}:{sent['logIndex']}"
    raw_log = next(e for e in receipt["logs"] if e["logIndex"] == sent["logIndex"])
    message = message_from_log(evm.deployment.chain_id, raw_log)
    forged = (*message[:-1], b"forged")

    async def scenario() -> Any:
        coordinator = Coordinator(don, timeout=5)
        observed = await coordinator.observe(
            ObserveRequest(request_id="forge-1", feed="MSG/A", ref=ref), numeric=False
        )
        value = observed[0].observation.value
        assert value == attested_value(encode_message(message))
        meta = ReportMetadata(
            execution_id=bytes(32),
            timestamp=int(time.time()),
            don_id=don.don_id,
            config_version=don.config_version,
            workflow_id=bytes.fromhex(b["wf"].id[2:]),
            workflow_name=b["wf"].name,
            workflow_owner=b["wf"].owner,
            report_id=b"\x00\x02",
        )
        request = ReportSignRequest(
            request_id="forge-1",
            fields=[
                FieldObservations(
                    feed="MSG/A", mode="identical", value=value, observations=observed
                )
            ],
            metadata=meta,
            receiver=b["gateway"],
            action_hash="0x" + "00" * 32,
            sequence=1,
            chain_id=CHAIN_B,
            payload="0x" + encode_message(forged).hex(),
        )
        return await coordinator.sign(request, bytes(32))

    supervisor.start()
    try:
        with pytest.raises(QuorumNotReached) as info:
            asyncio.run(scenario())
    finally:
        supervisor.stop()
    assert len(info.value.failures) == len(don.nodes)
    assert all("the payload hashes to" in why for why in info.value.failures.values())


def test_gateway_b_refuses_a_message_for_another_chain_and_a_starved_report_changes_nothing(
    evm: Any, chain_b: str
) -> None:
    """H-2: a message sent to C never pays out on B. M-2: too little gas reverts, never FAILs."""
    b = _stack_b(evm, chain_b)
    a = _stack_a(evm, CHAIN_B)
    gw_b = _trust(evm, a, b)
    fwd_b = contract(b["w3"], evm.artifacts, "Forwarder", b["forwarder"])
    sink = contract(b["w3"], evm.artifacts, "MessageSink", b["sink"])

    for_c = _send(evm, a, b, b"for C", ONE, dest=CHAIN_C)
    raw, context, sigs = _report(evm, b, for_c, time.time_ns())
    refused = b["writer"].transact(
        fwd_b.functions.report(b["gateway"], raw, context, sigs), gas=1_500_000
    )
    processed = fwd_b.events.ReportProcessed().process_receipt(refused, errors=DISCARD)
    assert [e["args"]["result"] for e in processed] == [False]
    assert gw_b.functions.getState(message_id(for_c)).call() == 0  # Unknown: nothing released
    assert sink.functions.calls().call() == 0

    # a submitter with enough gas to route but not for the receiver's 200k limit: the gateway
    # reverts (the forwarder records FAILED, retryable); the message is not marked Failed and the
    # lane does not move on
    message = _send(evm, a, b, b"ordered", ONE)
    raw, context, sigs = _report(evm, b, message, time.time_ns())
    starved = b["writer"].transact(
        fwd_b.functions.report(b["gateway"], raw, context, sigs), gas=330_000
    )
    processed = fwd_b.events.ReportProcessed().process_receipt(starved, errors=DISCARD)
    assert [e["args"]["result"] for e in processed] == [False]
    assert gw_b.functions.getState(message_id(message)).call() == 0
    assert gw_b.functions.getExecutedNonce(evm.deployment.chain_id, evm.writer.address).call() == 0
    # the same report with enough gas executes it
    again = b["writer"].transact(
        fwd_b.functions.report(b["gateway"], raw, context, sigs), gas=1_500_000
    )
    assert gw_b.events.MessageExecuted().process_receipt(again, errors=DISCARD)
    assert gw_b.functions.getState(message_id(message)).call() == EXECUTED
    assert sink.functions.calls().call() == 1
