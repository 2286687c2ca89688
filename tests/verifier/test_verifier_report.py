"""The Keystone report wire format: metadata, body, payload, context, digest, replay key."""

from __future__ import annotations

import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_abi import encode as abi_encode
from eth_abi.packed import encode_packed
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from vouch.verifier import (
    EncodingError,
    ReportBody,
    ReportMetadata,
    SettlementPayload,
    VerifierError,
    config_digest,
    decode_report,
    encode_report,
    execution_id,
    report_context,
    report_digest,
    transmission_id,
    workflow_id,
)

OWNER = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
RECEIVER = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
FORWARDER = "0x4B20993Bc481177ec7E8f571ceCaE8A9e22C02db"

bytes32 = st.binary(min_size=32, max_size=32)
uint32 = st.integers(0, 2**32 - 1)
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
names = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=10)


def k(data: bytes) -> bytes:
    """keccak256 from pycryptodome: independent of the verifier's own keccak."""
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


def sample_metadata() -> ReportMetadata:
    return ReportMetadata(
        version=1,
        execution_id=b"\x11" * 32,
        timestamp=1_800_000_000,
        don_id=1,
        config_version=2,
        workflow_id=b"\x22" * 32,
        workflow_name="settlement",
        workflow_owner=OWNER.lower(),
        report_id=b"\x00\x01",
    )


def sample_body(price: int = 3000 * 10**18) -> ReportBody:
    return ReportBody(
        chain_id=31337,
        receiver=RECEIVER,
        timestamp=1_800_000_000,
        action_hash=b"\x33" * 32,
        payload=SettlementPayload(trade_id=7, price=price).encode(),
    )


def test_metadata_is_109_bytes_laid_out_as_keystone_reads_them() -> None:
    encoded = sample_metadata().encode()
    by_hand = (
        b"\x01"
        + b"\x11" * 32
        + (1_800_000_000).to_bytes(4, "big")
        + (1).to_bytes(4, "big")
        + (2).to_bytes(4, "big")
        + b"\x22" * 32
        + b"settlement"
        + bytes.fromhex(OWNER[2:])
        + b"\x00\x01"
    )
    assert len(encoded) == 109
    assert encoded == by_hand
    # The slice the forwarder passes to onReport: workflowId, name, owner, reportId.
    assert encoded[45:109] == b"\x22" * 32 + b"settlement" + bytes.fromhex(OWNER[2:]) + b"\x00\x01"


def test_metadata_pinned_hex_vector() -> None:
    assert sample_metadata().encode().hex() == (
        "01"
        "1111111111111111111111111111111111111111111111111111111111111111"
        "6b49d200"
        "00000001"
        "00000002"
        "2222222222222222222222222222222222222222222222222222222222222222"
        "736574746c656d656e74"
        "5b38da6a701c568545dcfcb03fcb875f56beddc4"
        "0001"
    )


def test_short_workflow_names_are_right_padded_with_zero_bytes() -> None:
    meta = sample_metadata().model_copy(update={"workflow_name": "abc"})
    assert meta.encode()[77:87] == b"abc" + bytes(7)
    assert ReportMetadata.decode(meta.encode()).workflow_name == "abc"


def test_addresses_are_checksummed_and_bytes_travel_as_hex() -> None:
    meta = sample_metadata()
    assert meta.workflow_owner == OWNER
    dumped = meta.model_dump(mode="json")
    assert dumped["execution_id"] == "0x" + "11" * 32
    assert dumped["report_id"] == "0x0001"
    assert ReportMetadata.model_validate(dumped) == meta
    assert ReportMetadata.model_validate_json(meta.model_dump_json()) == meta


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError):
        sample_metadata().timestamp = 1  # type: ignore[misc]


def test_body_is_the_solidity_abi_encoding() -> None:
    body = sample_body()
    expected = abi_encode(
        ["uint256", "address", "uint64", "bytes32", "bytes"],
        [
            31337,
            RECEIVER,
            1_800_000_000,
            b"\x33" * 32,
            abi_encode(["uint256", "uint256"], [7, 3000 * 10**18]),
        ],
    )
    assert body.encode() == expected
    assert SettlementPayload.decode(body.payload) == SettlementPayload(
        trade_id=7, price=3000 * 10**18
    )


@settings(max_examples=150)
@given(
    execution=bytes32,
    timestamp=uint32,
    don=uint32,
    version=uint32,
    wid=bytes32,
    name=names,
    owner=addresses,
    report_id=st.binary(min_size=2, max_size=2),
    chain_id=st.integers(0, 2**256 - 1),
    receiver=addresses,
    body_ts=st.integers(0, 2**64 - 1),
    action=bytes32,
    payload=st.binary(max_size=200),
)
def test_report_round_trips(
    execution: bytes,
    timestamp: int,
    don: int,
    version: int,
    wid: bytes,
    name: str,
    owner: str,
    report_id: bytes,
    chain_id: int,
    receiver: str,
    body_ts: int,
    action: bytes,
    payload: bytes,
) -> None:
    meta = ReportMetadata(
        execution_id=execution,
        timestamp=timestamp,
        don_id=don,
        config_version=version,
        workflow_id=wid,
        workflow_name=name,
        workflow_owner=owner,
        report_id=report_id,
    )
    body = ReportBody(
        chain_id=chain_id, receiver=receiver, timestamp=body_ts, action_hash=action, payload=payload
    )
    raw = encode_report(meta, body)
    assert raw[:109] == meta.encode()
    assert body.encode() == abi_encode(  # the hand-packed body is exactly the ABI encoding
        ["uint256", "address", "uint64", "bytes32", "bytes"],
        [chain_id, receiver, body_ts, action, payload],
    )
    assert ReportMetadata.decode(meta.encode()) == meta
    assert ReportBody.decode(body.encode()) == body
    assert decode_report(raw) == (meta, body)


@given(st.integers(0, 2**256 - 1), st.integers(0, 2**256 - 1))
def test_settlement_payload_round_trips(trade: int, price: int) -> None:
    payload = SettlementPayload(trade_id=trade, price=price)
    assert payload.encode() == abi_encode(["uint256", "uint256"], [trade, price])
    assert SettlementPayload.decode(payload.encode()) == payload


def test_decode_errors_are_encoding_errors_that_name_the_field() -> None:
    good = sample_metadata().encode()
    with pytest.raises(EncodingError, match="109"):
        ReportMetadata.decode(good[:100])
    bad_name = good[:77] + b"\xffsettleme\x00" + good[87:]
    with pytest.raises(EncodingError, match="workflow_name"):
        ReportMetadata.decode(bad_name)
    with pytest.raises(EncodingError, match="body"):
        ReportBody.decode(b"\x00" * 10)
    with pytest.raises(EncodingError, match="payload"):
        SettlementPayload.decode(b"\x01")
    assert issubclass(EncodingError, VerifierError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("execution_id", b"\x01" * 31),
        ("workflow_id", b"\x01" * 33),
        ("report_id", b"\x01"),
        ("timestamp", 2**32),
        ("don_id", -1),
        ("workflow_name", "settlement!"),
        ("workflow_name", "é"),
        ("workflow_owner", "0x1234"),
    ],
)
def test_invalid_metadata_fields_are_refused_by_name(field: str, value: object) -> None:
    fields = sample_metadata().model_dump()
    fields[field] = value
    with pytest.raises(ValidationError, match=field):
        ReportMetadata(**fields)


def test_workflow_and_execution_ids() -> None:
    assert workflow_id("settlement") == k(b"settlement")
    wid, action = k(b"settlement"), b"\x44" * 32
    assert execution_id(wid, action, 3) == k(wid + action + (3).to_bytes(8, "big"))
    assert execution_id(wid, action, 3) != execution_id(wid, action, 4)


def test_config_digest_context_and_report_digest_computed_independently() -> None:
    signers = [RECEIVER, OWNER]
    digest = config_digest(31337, FORWARDER, 1, 2, 1, signers)
    assert digest == k(
        abi_encode(
            ["uint256", "address", "uint32", "uint32", "uint8", "address[]"],
            [31337, FORWARDER, 1, 2, 1, signers],
        )
    )
    context = report_context(digest, 5)
    assert len(context) == 96
    assert context == digest + (5).to_bytes(32, "big") + bytes(32)
    raw = encode_report(sample_metadata(), sample_body())
    expected = k(encode_packed(["bytes32", "bytes"], [k(raw), context]))
    assert report_digest(raw, context) == expected


def test_report_digest_pinned_vector() -> None:
    raw = encode_report(sample_metadata(), sample_body())
    context = report_context(b"\x55" * 32, 9)
    # Computed once from the layout in docs/internals.md with pycryptodome and eth_abi only.
    assert report_digest(raw, context).hex() == (
        "002e544954e189936f5106f6dd878f771f427898a730995971f257f139aea570"
    )


def test_report_context_refuses_bad_input() -> None:
    with pytest.raises(EncodingError):
        report_context(b"\x00" * 31, 0)
    with pytest.raises(EncodingError):
        report_context(b"\x00" * 32, 2**256)


def test_transmission_id_is_keystones_packed_key() -> None:
    expected = k(
        encode_packed(["address", "bytes32", "bytes2"], [RECEIVER, b"\x11" * 32, b"\x00\x01"])
    )
    assert transmission_id(RECEIVER.lower(), b"\x11" * 32, b"\x00\x01") == expected


@given(st.binary(min_size=20, max_size=20))
def test_addresses_normalize_to_the_eip55_checksum(raw: bytes) -> None:
    expected = to_checksum_address(raw)
    for spelling in (expected, expected.lower(), "0x" + expected[2:].upper()):
        body = ReportBody(chain_id=1, receiver=spelling, timestamp=0, action_hash=bytes(32))
        assert body.receiver == expected


def test_an_address_with_a_wrong_checksum_is_refused() -> None:
    wrong = RECEIVER.replace("Ab84", "aB84")
    with pytest.raises(ValidationError, match="receiver"):
        ReportBody(chain_id=1, receiver=wrong, timestamp=0, action_hash=bytes(32))
