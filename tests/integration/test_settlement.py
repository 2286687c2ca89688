"""The walking skeleton's promises, on a real anvil with real node processes."""

from __future__ import annotations

import pytest
from eth_account import Account

from vouch.cre_adapters import ContractRevert, QuorumNotReached
from vouch.verifier import AttestationLog

from .helpers import ONE, hand_made_report, open_trade, proposal, run_job, settle, signed_by

pytestmark = pytest.mark.integration

FUNDED, SETTLED = 2, 3


def trade_status(env, trade_id: int) -> int:
    return int(env.contract("SettlementGate").functions.getTrade(trade_id).call()[-1])


def test_settlement_settles_at_the_attested_price_and_logs_every_step(
    evm, log: AttestationLog
) -> None:
    outcome = settle(evm, log)
    assert outcome.status == "settled", outcome.error
    assert 2_500 * ONE < outcome.price < 3_500 * ONE
    assert len(outcome.signers) == evm.don.f + 1
    assert set(outcome.signers) <= set(evm.don.signers)
    receipt = evm.w3.eth.get_transaction_receipt(outcome.tx_hash)
    assert receipt["status"] == 1 and receipt["blockNumber"] == outcome.block_number
    kinds = [e.kind for e in log.entries()]
    assert kinds == ["proposal", "observations", "consensus", "report", "submission"]
    assert log.get(outcome.log_seq).kind == "submission"


def test_settlement_moves_both_legs(evm, log: AttestationLog) -> None:
    sub_outcome = settle(evm, log, proposal(amount=2))
    gate = evm.contract("SettlementGate")
    trade = gate.functions.getTrade(1).call()
    assert trade[-1] == SETTLED
    weth = evm.contract("TestToken", evm.deployment.address("WETH"))
    usdc = evm.contract("TestToken", evm.deployment.address("USDC"))
    seller, buyer = trade[0], trade[1]
    assert weth.functions.balanceOf(buyer).call() == 2 * ONE
    assert usdc.functions.balanceOf(seller).call() == 2 * sub_outcome.price
    assert weth.functions.balanceOf(gate.address).call() == 0
    assert usdc.functions.balanceOf(gate.address).call() == 0


def test_price_outside_bounds_is_refused_onchain_and_logged(evm, log: AttestationLog) -> None:
    outcome = settle(evm, log, proposal(min_price=10, max_price=20))
    assert outcome.status == "refused"
    assert outcome.error is not None and outcome.error["name"] == "PriceOutOfBounds"
    assert trade_status(evm, 1) == FUNDED
    submission = log.get(outcome.log_seq)
    assert submission.payload["status"] == "refused"
    assert submission.payload["error"]["name"] == "PriceOutOfBounds"


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("only_f", "InvalidSignatureCount"),
        ("unknown_key", "InvalidSigner"),
        ("duplicate", "DuplicateSigner"),
    ],
)
def test_forwarder_rejects_bad_signature_sets(
    evm, log: AttestationLog, case: str, error: str
) -> None:
    trade_id, digest = open_trade(evm, log)
    raw, context, to_sign = hand_made_report(evm, trade_id, digest, 3_000 * ONE)
    keys = evm.node_keys()
    signatures = {
        "only_f": signed_by(keys[: evm.don.f], to_sign),
        "unknown_key": signed_by([keys[0], Account.create().key], to_sign),
        "duplicate": signed_by([keys[0], keys[0]], to_sign),
    }[case]
    forwarder = evm.contract("Forwarder")
    gate = evm.deployment.address("SettlementGate")
    with pytest.raises(ContractRevert) as info:
        evm.writer.transact(forwarder.functions.report(gate, raw, context, signatures))
    assert info.value.name == error
    assert trade_status(evm, trade_id) == FUNDED


def test_replayed_report_is_rejected_and_settles_nothing_twice(evm, log: AttestationLog) -> None:
    trade_id, digest = open_trade(evm, log)
    raw, context, to_sign = hand_made_report(evm, trade_id, digest, 3_000 * ONE)
    signatures = signed_by(evm.node_keys()[: evm.don.f + 1], to_sign)
    forwarder = evm.contract("Forwarder")
    gate = evm.deployment.address("SettlementGate")
    evm.writer.transact(forwarder.functions.report(gate, raw, context, signatures), gas=1_000_000)
    assert trade_status(evm, trade_id) == SETTLED
    with pytest.raises(ContractRevert) as info:
        evm.writer.transact(
            forwarder.functions.report(gate, raw, context, signatures), gas=1_000_000
        )
    assert info.value.name == "AlreadyAttempted"


def test_one_node_down_still_settles(evm, log: AttestationLog) -> None:
    trade_id, digest = open_trade(evm, log)
    evm.supervisor.stop(["node-4"])
    try:
        outcome = run_job(evm, log, trade_id, digest)
    finally:
        evm.supervisor.start(["node-4"])
    assert outcome.status == "settled"
    assert evm.don.node("node-4").address not in outcome.signers


def test_two_nodes_down_stops_with_quorum_not_reached_and_submits_nothing(
    evm, log: AttestationLog
) -> None:
    trade_id, digest = open_trade(evm, log)
    nonce = evm.w3.eth.get_transaction_count(evm.writer.address)
    evm.supervisor.stop(["node-3", "node-4"])
    try:
        with pytest.raises(QuorumNotReached) as info:
            run_job(evm, log, trade_id, digest)
    finally:
        evm.supervisor.start(["node-3", "node-4"])
    assert info.value.needed == 3 and info.value.got == 2
    assert set(info.value.failures) == {"node-3", "node-4"}
    assert evm.w3.eth.get_transaction_count(evm.writer.address) == nonce
    assert trade_status(evm, trade_id) == FUNDED
    assert [e.kind for e in log.entries()][-1] == "aborted"


def test_audit_checks_signers_against_the_config_active_at_that_block(
    evm, log: AttestationLog
) -> None:
    from vouch.verifier import Web3ChainReader, audit

    settle(evm, log)
    forwarder = evm.contract("Forwarder")
    strangers = [Account.create().address for _ in range(4)]
    evm.writer.transact(
        forwarder.functions.setConfig(1, 1, 1, strangers)
    )  # the DON is replaced later
    report = audit(log, Web3ChainReader(evm.w3), forwarder=forwarder.address)
    assert report.ok, list(report.failures)
    signer_checks = [
        r for r in report.results if r.check in ("signers configured", "report signatures")
    ]
    assert len(signer_checks) == 2 and all(r.status == "ok" for r in signer_checks)
    # the same log, claimed against the replaced config, fails
    pinned = audit(log, Web3ChainReader(evm.w3), signers={(1, 1): (1, strangers)})
    assert {f.check for f in pinned.failures} == {"signers configured", "report signatures"}
