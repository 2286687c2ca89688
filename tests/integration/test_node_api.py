"""A node's HTTP API over real loopback HTTP: good answers signed, bad requests refused cleanly."""

from __future__ import annotations

import time

import httpx
import pytest

from vouch.verifier import SignedObservation, recover_observation_signer

pytestmark = pytest.mark.integration


def url(env, path: str, node: int = 0) -> str:
    return env.don.nodes[node].url + path


def test_health_names_the_node_and_its_key(env) -> None:
    answer = httpx.get(url(env, "/health")).json()
    assert answer["status"] == "ok"
    assert answer["address"] == env.don.nodes[0].address


def test_observation_is_signed_by_the_nodes_own_key(env) -> None:
    answer = httpx.post(url(env, "/observe", 2), json={"request_id": "t-1", "feed": "ETH/USD"})
    assert answer.status_code == 200
    signed = SignedObservation.model_validate(answer.json())
    assert recover_observation_signer(signed) == env.don.nodes[2].address
    assert abs(signed.observation.observed_at - time.time()) < 30


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/observe", {"request_id": "x"}, "feed"),
        ("/observe", {"request_id": "x", "feed": "not a feed"}, "feed"),
        ("/observe", {"request_id": "x", "feed": "ETH/USD", "extra": 1}, "extra"),
        ("/observe", {"request_id": "x", "feed": "DOGE/USD"}, "unknown feed"),
        ("/sign/settlement", {"request_id": "x"}, "observations"),
        ("/sign/settlement", [], "malformed"),
    ],
)
def test_malformed_requests_get_4xx_and_a_message_not_a_traceback(env, path, body, needle) -> None:
    answer = httpx.post(url(env, path), json=body)
    assert 400 <= answer.status_code < 500
    text = answer.text
    assert needle in text
    assert "Traceback" not in text and 'File "' not in text


def test_body_that_is_not_json_is_a_4xx(env) -> None:
    answer = httpx.post(
        url(env, "/observe"), content=b"{not json", headers={"content-type": "application/json"}
    )
    assert 400 <= answer.status_code < 500
    assert "malformed" in answer.json()["error"]


def sign_body(env, request_id: str, observations: list[dict]) -> dict:
    wf = env.deployment.workflow
    return {
        "request_id": request_id,
        "feed": "ETH/USD",
        "observations": observations,
        "metadata": {
            "version": 1,
            "execution_id": "0x" + "11" * 32,
            "timestamp": int(time.time()),
            "don_id": env.don.don_id,
            "config_version": env.don.config_version,
            "workflow_id": wf.id,
            "workflow_name": wf.name,
            "workflow_owner": wf.owner,
            "report_id": wf.report_id,
        },
        "receiver": env.deployment.address("SettlementGate"),
        "action_hash": "0x" + "22" * 32,
        "trade_id": 1,
        "sequence": 1,
    }


def test_node_refuses_to_sign_without_a_quorum_of_signed_observations(env) -> None:
    obs = httpx.post(url(env, "/observe"), json={"request_id": "q-1", "feed": "ETH/USD"}).json()
    answer = httpx.post(url(env, "/sign/settlement"), json=sign_body(env, "q-1", [obs]))
    assert answer.status_code == 409
    assert "2f+1" in answer.json()["error"]


def test_node_refuses_to_sign_over_a_forged_observation(env) -> None:
    observations = [
        httpx.post(url(env, "/observe", i), json={"request_id": "f-1", "feed": "ETH/USD"}).json()
        for i in range(3)
    ]
    observations[2]["observation"]["value"] = 10**30  # a lie the node did not sign
    answer = httpx.post(url(env, "/sign/settlement", 3), json=sign_body(env, "f-1", observations))
    assert answer.status_code == 409
    assert env.don.nodes[2].address in answer.json()["error"]
