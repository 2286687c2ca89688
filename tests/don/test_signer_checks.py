"""A signer's checks of the observation set, in process (no HTTP): its own observation included."""

from __future__ import annotations

import asyncio
import time

import pytest
from eth_account import Account

from vouch.cre_adapters import (
    DonConfig,
    NodeSpec,
    ObserveRequest,
    OracleNode,
    SettlementSignRequest,
    SigningRefused,
)
from vouch.cre_adapters import _node as node_module
from vouch.cre_adapters._sources import MockPriceSource
from vouch.verifier import (
    Observation,
    ReportMetadata,
    SignedObservation,
    median,
    recover_observation_signer,
    workflow_id,
)

RECEIVER = "0x" + "11" * 20


def make_nodes() -> tuple[DonConfig, list[OracleNode]]:
    keys = [Account.create() for _ in range(4)]
    specs = [
        NodeSpec(name=f"node-{i + 1}", address=k.address, port=9100 + i, keystore=f"k{i}")
        for i, k in enumerate(keys)
    ]
    don = DonConfig(f=1, chain_id=31337, forwarder=Account.create().address, nodes=specs)
    nodes = [
        OracleNode(don, spec, bytes(key.key), MockPriceSource(7, i, 5))
        for i, (spec, key) in enumerate(zip(specs, keys, strict=True))
    ]
    return don, nodes


def sign_request(don: DonConfig, observations: list[SignedObservation]) -> SettlementSignRequest:
    meta = ReportMetadata(
        execution_id=bytes(32),
        timestamp=int(time.time()),
        don_id=don.don_id,
        config_version=don.config_version,
        workflow_id=workflow_id("unit"),
        workflow_name="unit",
        workflow_owner="0x" + "22" * 20,
        report_id=b"\x00\x01",
    )
    return SettlementSignRequest(
        request_id=observations[0].observation.request_id,
        feed="ETH/USD",
        observations=observations,
        metadata=meta,
        receiver=RECEIVER,
        action_hash="0x" + "00" * 32,
        trade_id=1,
        sequence=1,
    )


def observe_all(nodes: list[OracleNode], request_id: str) -> list[SignedObservation]:
    request = ObserveRequest(request_id=request_id, feed="ETH/USD")
    return [asyncio.run(n.observe(request)) for n in nodes[:3]]


def count_recoveries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The nodes whose observations a signer recovers from now on, in order."""
    recovered: list[str] = []
    real = node_module.observation_signer

    def counting(signed: SignedObservation) -> bytes:
        recovered.append(signed.observation.node)
        return real(signed)

    monkeypatch.setattr(node_module, "observation_signer", counting)
    return recovered


def test_a_signer_takes_its_own_observation_without_recovering_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    don, nodes = make_nodes()
    observations = observe_all(nodes, "own-1")
    recovered = count_recoveries(monkeypatch)
    answer = nodes[0].sign_settlement(sign_request(don, observations))
    assert answer.price == median([o.observation.value for o in observations])
    assert sorted(recovered) == sorted(o.observation.node for o in observations[1:])


def test_a_forged_copy_of_the_signers_own_observation_is_still_refused() -> None:
    """Same node, same signature, another value: not what it signed, so it is recovered, and fails."""
    don, nodes = make_nodes()
    observations = observe_all(nodes, "own-2")
    mine = observations[0]
    forged_obs = Observation.model_validate(
        {**mine.observation.model_dump(), "value": mine.observation.value + 1}
    )
    forged = SignedObservation(observation=forged_obs, signature=mine.signature)
    assert recover_observation_signer(forged) != mine.observation.node
    with pytest.raises(SigningRefused, match="signed by"):
        nodes[0].sign_settlement(sign_request(don, [forged, *observations[1:]]))


def test_a_signer_that_never_observed_the_round_recovers_every_observation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    don, nodes = make_nodes()
    observations = observe_all(nodes, "own-3")
    calls = count_recoveries(monkeypatch)
    nodes[3].sign_settlement(sign_request(don, observations))  # node-4 observed nothing
    assert len(calls) == 3
