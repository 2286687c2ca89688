"""The runtime admin endpoint is loopback-only and token-guarded; faults also come from the config."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from vouch.cre_adapters import (
    DonSupervisor,
    FaultSpec,
    MockPriceSource,
    NodeError,
    OracleNode,
    create_app,
    health,
    load_key,
    set_fault,
)
from vouch.verifier import SignedObservation, recover_observation_signer

from ..conftest import PASSWORD
from .conftest import admin_headers

pytestmark = pytest.mark.integration


def test_admin_needs_the_token_from_the_token_file(env: Any) -> None:
    url = env.don.nodes[0].url + "/admin/fault"
    for headers in ({}, {"Authorization": "Bearer nope"}):
        answer = httpx.put(url, json={"mode": "down"}, headers=headers)
        assert answer.status_code == 403
        assert "admin token" in answer.json()["error"]
    assert health(env.don.nodes[0]) is not None  # still up: nothing was applied


def test_admin_rejects_unknown_modes_and_reports_the_current_one(env: Any) -> None:
    url = env.don.nodes[0].url + "/admin/fault"
    bad = httpx.put(url, json={"mode": "sleepy"}, headers=admin_headers(env.don))
    assert bad.status_code == 422
    current = httpx.get(url, headers=admin_headers(env.don))
    assert current.status_code == 200 and current.json()["mode"] == "none"


def test_set_fault_client_and_health_show_the_mode(env: Any) -> None:
    try:
        applied = set_fault(env.don, "node-2", FaultSpec(mode="stale", stale_by=99))
        assert applied.mode == "stale" and applied.stale_by == 99
        answer = health(env.don.node("node-2"))
        assert answer is not None and answer["fault"] == "stale"
    finally:
        set_fault(env.don, "node-2", FaultSpec())


def test_set_fault_with_a_wrong_token_is_a_node_error(env: Any, tmp_path: Any) -> None:
    wrong = tmp_path / "token"
    wrong.write_text("not-the-token")
    don = env.don.model_copy(update={"admin_token_file": wrong})
    with pytest.raises(NodeError, match="admin refused \\(403\\)"):
        set_fault(don, "node-1", FaultSpec(mode="down"))


def in_process(env: Any, fault: FaultSpec, name: str = "node-1") -> tuple[TestClient, Any]:
    """A node app built from a DON config entry with ``fault``, served in-process."""
    spec = env.don.node(name).model_copy(update={"fault": fault})
    key = load_key(spec.keystore, PASSWORD)
    node = OracleNode(env.don, spec, key, MockPriceSource(7, 1))
    return TestClient(create_app(node)), spec


def test_admin_is_refused_off_loopback(env: Any) -> None:
    client, _ = in_process(env, FaultSpec())
    answer = client.put("/admin/fault", json={"mode": "down"}, headers=admin_headers(env.don))
    assert answer.status_code == 403 and "loopback" in answer.json()["error"]


def test_fault_from_the_don_config_applies_from_the_start(env: Any) -> None:
    client, spec = in_process(env, FaultSpec(mode="lie", lie_bps=1000))
    honest, _ = in_process(env, FaultSpec())
    body = {"request_id": "cfg-1", "feed": "ETH/USD"}
    lied = SignedObservation.model_validate(client.post("/observe", json=body).json())
    told = SignedObservation.model_validate(honest.post("/observe", json=body).json())
    assert lied.observation.value == told.observation.value * 11_000 // 10_000
    assert recover_observation_signer(lied) == spec.address  # a lie, validly signed
    assert client.get("/health").json()["fault"] == "lie"


def test_down_in_the_don_config_means_the_process_is_not_started(env: Any, tmp_path: Any) -> None:
    nodes = [
        n.model_copy(update={"fault": FaultSpec(mode="down")}) if n.name == "node-1" else n
        for n in env.don.nodes
    ]
    don = env.don.model_copy(update={"nodes": nodes})
    supervisor = DonSupervisor(don, tmp_path / "don.json", tmp_path, ["false"], {})
    supervisor.start(["node-1"])  # would fail ("false" exits) if it tried to start it
    assert supervisor.pids() == {}


def test_honest_node_repeats_its_signed_observation_within_a_round(env: Any) -> None:
    url = env.don.nodes[1].url + "/observe"
    body = {"request_id": "echo-1", "feed": "ETH/USD"}
    first, second = httpx.post(url, json=body).json(), httpx.post(url, json=body).json()
    assert first == second


def test_runtime_down_drops_connections_like_a_dead_node_and_heals(env: Any) -> None:
    node = env.don.node("node-3")
    body = {"request_id": "down-1", "feed": "ETH/USD"}
    try:
        set_fault(env.don, "node-3", FaultSpec(mode="down"))
        with pytest.raises(httpx.TransportError):  # no HTTP answer at all, not a 503
            httpx.post(node.url + "/observe", json=body, timeout=2)
        with pytest.raises(httpx.TransportError):
            httpx.get(node.url + "/health", timeout=2)
        assert health(node) is None
        current = httpx.get(node.url + "/admin/fault", headers=admin_headers(env.don))
        assert current.json()["mode"] == "down"  # the admin endpoint still answers
    finally:
        set_fault(env.don, "node-3", FaultSpec())
    answer = httpx.post(node.url + "/observe", json=body, timeout=2)
    assert answer.status_code == 200
    assert recover_observation_signer(SignedObservation.model_validate(answer.json())) == (
        node.address
    )
