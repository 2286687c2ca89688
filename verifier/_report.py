"""The Keystone report wire format: 109-byte metadata, ABI body, report context, digest.

Layout (packed, big-endian), as Chainlink's KeystoneForwarder reads it::

    version (1) | workflowExecutionId (32) | timestamp (4) | donId (4) |
    donConfigVersion (4) | workflowId (32) | workflowName (10) |
    workflowOwner (20) | reportId (2)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Self

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._canonical import keccak
from ._errors import EncodingError
from ._types import Address, HexBytes, to_checksum

METADATA_LENGTH = 109
FORWARDER_METADATA_LENGTH = 45
CONTEXT_LENGTH = 96
_UINT32 = 2**32
_BODY_TYPES = ["uint256", "address", "uint64", "bytes32", "bytes"]


def _fixed(name: str, size: int):  # type: ignore[no-untyped-def]
    def check(cls: type, value: bytes) -> bytes:
        if len(value) != size:
            raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
        return value

    return field_validator(name)(classmethod(check))


class ReportMetadata(BaseModel):
    """The 109-byte metadata in front of every report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(default=1, ge=0, lt=256)
    execution_id: HexBytes
    timestamp: int = Field(ge=0, lt=_UINT32)
    don_id: int = Field(ge=0, lt=_UINT32)
    config_version: int = Field(ge=0, lt=_UINT32)
    workflow_id: HexBytes
    workflow_name: str = Field(
        max_length=10, pattern=r"^[\x01-\x7f]*$"
    )  # NUL pads; never part of a name
    workflow_owner: Address
    report_id: HexBytes

    _execution_id = _fixed("execution_id", 32)
    _workflow_id = _fixed("workflow_id", 32)
    _report_id = _fixed("report_id", 2)

    def encode(self) -> bytes:
        """The packed 109 bytes."""
        return b"".join(
            [
                self.version.to_bytes(1, "big"),
                self.execution_id,
                self.timestamp.to_bytes(4, "big"),
                self.don_id.to_bytes(4, "big"),
                self.config_version.to_bytes(4, "big"),
                self.workflow_id,
                self.workflow_name.encode("ascii").ljust(10, b"\x00"),
                bytes.fromhex(self.workflow_owner[2:]),
                self.report_id,
            ]
        )

    @property
    def config_id(self) -> int:
        """The forwarder's key for the DON config: donId << 32 | configVersion."""
        return (self.don_id << 32) | self.config_version

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse the first 109 bytes of ``data``.

        Raises:
            EncodingError: if ``data`` is shorter than 109 bytes or a field is invalid.
        """
        if len(data) < METADATA_LENGTH:
            raise EncodingError(f"report metadata needs {METADATA_LENGTH} bytes, got {len(data)}")
        name = data[77:87].rstrip(b"\x00")
        try:
            return cls(
                version=data[0],
                execution_id=data[1:33],
                timestamp=int.from_bytes(data[33:37], "big"),
                don_id=int.from_bytes(data[37:41], "big"),
                config_version=int.from_bytes(data[41:45], "big"),
                workflow_id=data[45:77],
                workflow_name=name.decode("latin-1"),  # non-ASCII fails validation, by name
                workflow_owner=to_checksum(data[87:107]),
                report_id=data[107:109],
            )
        except (ValidationError, UnicodeDecodeError) as exc:
            raise EncodingError(f"invalid report metadata: {exc}") from None


class ReportBody(BaseModel):
    """``abi.encode(uint256 chainId, address receiver, uint64 timestamp, bytes32 actionHash, bytes payload)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int = Field(ge=0, lt=2**256)
    receiver: Address
    timestamp: int = Field(ge=0, lt=2**64)
    action_hash: HexBytes
    payload: HexBytes = b""

    _action_hash = _fixed("action_hash", 32)

    def encode(self) -> bytes:
        """ABI-encode the body (packed by hand: the layout is fixed, and eth_abi is slow)."""
        payload = self.payload
        return b"".join(
            [
                self.chain_id.to_bytes(32, "big"),
                bytes(12) + bytes.fromhex(self.receiver[2:]),
                self.timestamp.to_bytes(32, "big"),
                self.action_hash,
                (5 * 32).to_bytes(32, "big"),  # offset of the dynamic payload
                len(payload).to_bytes(32, "big"),
                payload,
                bytes(-len(payload) % 32),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """ABI-decode a body.

        Raises:
            EncodingError: if ``data`` is not a valid body.
        """
        try:
            chain_id, receiver, timestamp, action, payload = abi_decode(_BODY_TYPES, data)
        except (DecodingError, ValueError) as exc:
            raise EncodingError(f"invalid report body: {exc}") from None
        return cls(
            chain_id=chain_id,
            receiver=receiver,
            timestamp=timestamp,
            action_hash=action,
            payload=payload,
        )


class SettlementPayload(BaseModel):
    """The settlement gate's payload: ``abi.encode(uint256 tradeId, uint256 price)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trade_id: int = Field(ge=0, lt=2**256)
    price: int = Field(ge=0, lt=2**256)

    def encode(self) -> bytes:
        """ABI-encode the payload."""
        return self.trade_id.to_bytes(32, "big") + self.price.to_bytes(32, "big")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """ABI-decode a payload.

        Raises:
            EncodingError: if ``data`` is not a settlement payload.
        """
        try:
            trade_id, price = abi_decode(["uint256", "uint256"], data)
        except (DecodingError, ValueError) as exc:
            raise EncodingError(f"invalid settlement payload: {exc}") from None
        return cls(trade_id=trade_id, price=price)


def encode_report(metadata: ReportMetadata, body: ReportBody) -> bytes:
    """The raw report: metadata ‖ body."""
    return metadata.encode() + body.encode()


def decode_report(raw: bytes) -> tuple[ReportMetadata, ReportBody]:
    """Split a raw report into metadata and body.

    Raises:
        EncodingError: if either part is invalid.
    """
    return ReportMetadata.decode(raw), ReportBody.decode(raw[METADATA_LENGTH:])


def workflow_id(name: str) -> bytes:
    """The default workflow id: keccak256 of the workflow's name."""
    return keccak(name.encode("utf-8"))


def execution_id(workflow: bytes, action_hash: bytes, round_: int) -> bytes:
    """keccak256(workflowId ‖ actionHash ‖ uint64 round)."""
    return keccak(workflow + action_hash + round_.to_bytes(8, "big"))


def config_digest(
    chain_id: int, forwarder: str, don_id: int, config_version: int, f: int, signers: list[str]
) -> bytes:
    """keccak256(abi.encode(chainId, forwarder, donId, configVersion, f, signers))."""
    return _config_digest(chain_id, forwarder, don_id, config_version, f, tuple(signers))


@lru_cache(maxsize=256)  # every report of a round needs it; a DON has one or a few
def _config_digest(
    chain_id: int,
    forwarder: str,
    don_id: int,
    config_version: int,
    f: int,
    signers: tuple[str, ...],
) -> bytes:
    return keccak(
        abi_encode(
            ["uint256", "address", "uint32", "uint32", "uint8", "address[]"],
            [chain_id, forwarder, don_id, config_version, f, list(signers)],
        )
    )


def report_context(digest: bytes, sequence: int) -> bytes:
    """ConfigDigest (32) ‖ uint256 sequence (32) ‖ 32 zero bytes.

    Raises:
        EncodingError: if the digest is not 32 bytes or the sequence does not fit.
    """
    if len(digest) != 32:
        raise EncodingError(f"config digest must be 32 bytes, got {len(digest)}")
    if not 0 <= sequence < 2**256:
        raise EncodingError(f"sequence {sequence} does not fit in uint256")
    return digest + sequence.to_bytes(32, "big") + bytes(32)


def report_digest(raw: bytes, context: bytes) -> bytes:
    """What the nodes sign: keccak256(keccak256(raw) ‖ reportContext)."""
    return keccak(keccak(raw) + context)


def transmission_id(receiver: str, execution: bytes, report_id: bytes) -> bytes:
    """The forwarder's replay key: keccak256(receiver ‖ executionId ‖ reportId)."""
    return keccak(bytes.fromhex(to_checksum(receiver)[2:]) + execution + report_id)
