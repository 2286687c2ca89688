"""`vouch workflow simulate FILE --broadcast`: the report goes through the REAL forwarder, signed by the DON.

A data-feed project in a temp dir (its own home, chain and deployment). With
--broadcast the transaction must reach the deployment's Forwarder, carry f+1
signatures that recover to the forwarder's configured signers, emit
ReportProcessed(receiver, ..., true), be recorded as the transmission and
change the receiver's state. Without --broadcast nothing is sent: the block
number, the transmitter's nonce and the receiver's state stay as they were.
A simulate that silently fell back to no write fails the first half.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode
from eth_keys import keys
from web3 import Web3

from tests.workflows.helpers import http_server
from tests.workflows.test_templates import point_config, vouch
from vouch.verifier import report_digest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FORWARDER_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "getConfig",
        "stateMutability": "view",
        "inputs": [
            {"name": "donId", "type": "uint32"},
            {"name": "configVersion", "type": "uint32"},
        ],
        "outputs": [{"name": "f", "type": "uint8"}, {"name": "signers", "type": "address[]"}],
    },
    {
        "type": "function",
        "name": "getTransmitter",
        "stateMutability": "view",
        "inputs": [
            {"name": "receiver", "type": "address"},
            {"name": "workflowExecutionId", "type": "bytes32"},
            {"name": "reportId", "type": "bytes2"},
        ],
        "outputs": [{"name": "", "type": "address"}],
    },
]
PROCESSED = Web3.keccak(text="ReportProcessed(address,bytes32,bytes2,bool)")
REPORT = Web3.keccak(text="report(address,bytes,bytes,bytes[])")[:4]
PRICE = Web3.keccak(text="price()")[:4]


def chain(project: Path) -> Web3:
    url = json.loads((project / ".vouch" / "chain" / "anvil.json").read_text())["url"]
    return Web3(Web3.HTTPProvider(url))


def receiver_price(w3: Web3, receiver: str) -> int:
    return int.from_bytes(w3.eth.call({"to": Web3.to_checksum_address(receiver), "data": PRICE}))


def test_broadcast_goes_through_the_real_forwarder_and_plain_simulate_sends_nothing(
    tmp_path: Path,
) -> None:
    created = vouch(tmp_path, "init", "feed", "--template", "data-feed")
    assert created.returncode == 0, created.stderr
    project = tmp_path / "feed"
    try:
        with http_server(lambda seen, i: (200, b'{"price": 300000000000}', 0)) as server:
            point_config(project, "url", server.url + "/price")
            sent = vouch(project, "workflow", "simulate", "workflow.py", "--broadcast")
        assert sent.returncode == 0, sent.stdout[-3000:] + sent.stderr[-3000:]
        found = re.search(r"submission: delivered in (0x[0-9a-f]{64})", sent.stdout)
        assert found, f"no delivered transaction in the output:\n{sent.stdout[-3000:]}"
        w3 = chain(project)
        manifest = json.loads((project / ".vouch" / "deployments" / "31337.json").read_text())
        forwarder = Web3.to_checksum_address(manifest["contracts"]["Forwarder"])
        tx = w3.eth.get_transaction(found.group(1))
        receipt = w3.eth.get_transaction_receipt(found.group(1))
        assert receipt["status"] == 1
        assert tx["to"] == forwarder  # the deployment's forwarder, not a mock
        data = bytes(tx["input"])
        assert data[:4] == REPORT
        receiver, raw, context, signatures = decode(
            ["address", "bytes", "bytes", "bytes[]"], data[4:]
        )
        receiver = Web3.to_checksum_address(receiver)
        # the forwarder's ReportProcessed for this receiver, accepted
        processed = [
            log
            for log in receipt["logs"]
            if log["address"] == forwarder and log["topics"][0] == PROCESSED
        ]
        assert len(processed) == 1
        topics = processed[0]["topics"]
        assert Web3.to_checksum_address(bytes(topics[1])[12:]) == receiver
        assert int.from_bytes(bytes(processed[0]["data"])) == 1  # result: true
        # the transmission is recorded: the forwarder knows who transmitted it
        contract = w3.eth.contract(address=forwarder, abi=FORWARDER_ABI)
        transmitter = contract.functions.getTransmitter(
            receiver, bytes(topics[2]), bytes(topics[3])[:2]
        ).call()
        assert transmitter == tx["from"]
        # real signatures: f+1 distinct configured signers over the Keystone digest
        don_id, version = int.from_bytes(raw[37:41]), int.from_bytes(raw[41:45])  # metadata
        f, signers = contract.functions.getConfig(don_id, version).call()
        digest = report_digest(raw, context)
        recovered = {
            keys.Signature(bytes(s)).recover_public_key_from_msg_hash(digest).to_checksum_address()
            for s in signatures
        }
        assert len(recovered) == len(signatures) >= f + 1
        assert recovered <= set(signers)
        # the receiver's state changed to the attested value
        assert receiver_price(w3, receiver) == 300000000000

        # without --broadcast: the chain is up (reads allowed) but nothing is sent
        block = w3.eth.block_number
        nonce = w3.eth.get_transaction_count(tx["from"])
        with http_server(lambda seen, i: (200, b'{"price": 310000000000}', 0)) as server:
            point_config(project, "url", server.url + "/price")
            dry = vouch(project, "workflow", "simulate", "workflow.py")
        assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
        assert "report: ['uint256'] = [310000000000]" in dry.stdout
        assert "submission:" not in dry.stdout
        assert w3.eth.block_number == block
        assert w3.eth.get_transaction_count(tx["from"]) == nonce
        assert receiver_price(w3, receiver) == 300000000000
    finally:
        vouch(project, "down", timeout=120)
