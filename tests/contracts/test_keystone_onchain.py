"""The real KeystoneForwarder (@chainlink/contracts 1.5.0) driven by vouch's own DON, on anvil.

The whole vouch settlement flow runs unchanged (agents' proposal, real node processes, median
consensus, f+1 report signatures made by the nodes, ChainSubmitter) except that the deployment
points at Chainlink's forwarder, with a SettlementGate that trusts it: the trade settles, and
Keystone records the transmission as SUCCEEDED.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import pytest
from web3.logs import DISCARD

from vouch.verifier import AttestationLog

from ..integration.helpers import ONE, settle
from ..scripts import ROOT, load_script

pytestmark = pytest.mark.integration

SUCCEEDED, SETTLED = 1, 3
GAS_BENCH = ROOT / "scripts" / "bench" / "gas.py"


def _gas_bench() -> ModuleType:
    return load_script(GAS_BENCH, "vouch_gas_bench")  # its dataclasses look their module up


@pytest.fixture(scope="module")
def keystone_artifact() -> Any:
    """KeystoneForwarder compiled by the same solc as ours (scripts/bench/gas.py)."""
    return _gas_bench().compile_contracts()["KeystoneForwarder"]


def _keystone_env(env: Any, artifact: Any) -> tuple[Any, Any]:
    """The env with Keystone as its forwarder and a SettlementGate that trusts it."""
    writer = env.writer
    keystone_address, _ = writer.deploy(artifact.abi, artifact.bytecode)
    keystone = env.w3.eth.contract(address=keystone_address, abi=artifact.abi)
    don = env.deployment.don
    writer.transact(
        keystone.functions.setConfig(don.don_id, don.config_version, don.f, don.signers)
    )
    gate_artifact = env.artifacts.get("SettlementGate")
    wf = env.deployment.workflow
    gate, _ = writer.deploy(
        gate_artifact.abi,
        gate_artifact.bytecode,
        keystone_address,
        wf.owner,
        wf.id,
        env.deployment.freshness_window,
        0,  # no DON pin: Keystone's forwarder does not pass the DON on to receivers
        0,
    )
    gate_contract = env.w3.eth.contract(address=gate, abi=gate_artifact.abi)
    for token in ("WETH", "USDC"):
        writer.transact(
            gate_contract.functions.setTokenAllowed(env.deployment.address(token), True)
        )
    contracts = {**env.deployment.contracts, "Forwarder": keystone_address, "SettlementGate": gate}
    deployment = env.deployment.model_copy(update={"contracts": contracts})
    return dataclasses.replace(env, deployment=deployment), keystone


def test_keystone_forwarder_settles_a_trade_signed_by_the_vouch_don(
    evm: Any, log: AttestationLog, keystone_artifact: Any
) -> None:
    env, keystone = _keystone_env(evm, keystone_artifact)
    assert keystone.functions.typeAndVersion().call() == "KeystoneForwarder 1.0.0"

    outcome = settle(env, log)

    assert outcome.status == "settled", outcome.error
    assert 2_500 * ONE < outcome.price < 3_500 * ONE
    gate = env.contract("SettlementGate")
    assert gate.functions.getTrade(1).call()[-1] == SETTLED
    receipt = env.w3.eth.get_transaction_receipt(outcome.tx_hash)
    assert receipt["to"] == keystone.address
    processed = keystone.events.ReportProcessed().process_receipt(receipt, errors=DISCARD)
    assert [e["args"]["result"] for e in processed] == [True]
    args = processed[0]["args"]
    info = keystone.functions.getTransmissionInfo(
        gate.address, args["workflowExecutionId"], args["reportId"]
    ).call()
    assert info[1] == SUCCEEDED
