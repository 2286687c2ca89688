"""HTTP bodies exchanged between the coordinator and the nodes."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vouch.verifier import ReportMetadata, SignedObservation

from ._don import checksum

REQUEST_ID = r"^[A-Za-z0-9._:-]{1,128}$"
FEED = r"^[A-Z0-9]{1,12}/[A-Z0-9]{1,12}$"


class ObserveRequest(BaseModel):
    """Ask a node for its signed observation of one feed."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=REQUEST_ID)
    feed: str = Field(pattern=FEED)
    ref: str | None = Field(
        default=None,
        pattern=r"^0x[0-9a-fA-F]{64}:[0-9]{1,6}$",
        description="an onchain thing the feed is about: 0x<tx hash>:<log index>",
    )


class SettlementSignRequest(BaseModel):
    """Ask a node to sign a settlement report it re-derives from the observations."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=REQUEST_ID)
    feed: str = Field(pattern=FEED)
    observations: list[SignedObservation] = Field(min_length=1, max_length=31)
    metadata: ReportMetadata
    receiver: str
    action_hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    trade_id: int = Field(ge=1, lt=2**256)
    sequence: int = Field(ge=0, lt=2**256)

    _check_receiver = field_validator("receiver")(classmethod(lambda cls, v: checksum(v)))


ModeName = Literal["median", "identical", "mode"]


class FieldObservations(BaseModel):
    """One field of a report: a feed, its aggregation mode, its claimed outcome, and the evidence.

    ``value`` is what the coordinator aggregated; every signing node
    re-derives it from ``observations`` with the same mode and refuses when
    it differs. ``min_count`` is the votes ``mode`` needs (None: f+1).
    """

    model_config = ConfigDict(extra="forbid")

    feed: str = Field(pattern=FEED)
    mode: ModeName
    min_count: int | None = Field(default=None, ge=1, le=31)
    value: int = Field(ge=-(2**255), lt=2**255)
    observations: list[SignedObservation] = Field(min_length=1, max_length=31)


class ReportSignRequest(BaseModel):
    """Ask a node to sign a report of one or more fields, each aggregated by its own mode.

    The body's payload is ``abi.encode(string[] feeds, string[] modes,
    int256[] values)`` in the order of ``fields`` (``FeedsPayload``).
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=REQUEST_ID)
    fields: list[FieldObservations] = Field(min_length=1, max_length=16)
    metadata: ReportMetadata
    receiver: str
    action_hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    sequence: int = Field(ge=0, lt=2**256)
    chain_id: int | None = Field(
        default=None, ge=1, description="the chain the report is for (None: the DON's own)"
    )
    payload: str | None = Field(
        default=None,
        pattern=r"^0x([0-9a-fA-F]{2})*$",
        description="attested bytes: one identical field whose value is attested_value(payload)",
    )

    _check_receiver = field_validator("receiver")(classmethod(lambda cls, v: checksum(v)))

    @model_validator(mode="after")
    def _distinct_feeds(self) -> Self:
        feeds = [f.feed for f in self.fields]
        if len(set(feeds)) != len(feeds):
            raise ValueError(f"a feed appears twice in one report: {feeds}")
        return self


class SignResponse(BaseModel):
    """A node's signature over a report digest, and what it signed.

    ``price`` is the settlement price; ``values`` the outcome per field of a
    ``ReportSignRequest``, in its order.
    """

    node: str
    signer: str
    signature: str
    digest: str
    price: int | None = None
    values: list[int] = Field(default_factory=list)


class HealthResponse(BaseModel):
    """A node's liveness and identity."""

    status: str
    node: str
    address: str
    don_id: int
    config_version: int
    last_round: str | None
    last_round_at: float | None = None
    rounds: int = 0
    fault: str = "none"


class FeedsPayload(BaseModel):
    """The payload of a multi-mode report: ``abi.encode(string[] feeds, string[] modes, int256[] values)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feeds: list[str]
    modes: list[str]
    values: list[int]

    def encode(self) -> bytes:
        """ABI-encode the payload."""
        from eth_abi import encode

        return encode(["string[]", "string[]", "int256[]"], [self.feeds, self.modes, self.values])

    @classmethod
    def decode(cls, data: bytes) -> FeedsPayload:
        """ABI-decode a payload (raises ``eth_abi`` decoding errors on bad data)."""
        from eth_abi import decode

        feeds, modes, values = decode(["string[]", "string[]", "int256[]"], data)
        return cls(feeds=list(feeds), modes=list(modes), values=list(values))
