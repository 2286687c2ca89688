"""HTTP bodies exchanged between the coordinator and the nodes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from verifier import ReportMetadata, SignedObservation

from ._don import checksum

REQUEST_ID = r"^[A-Za-z0-9._:-]{1,128}$"
FEED = r"^[A-Z0-9]{1,12}/[A-Z0-9]{1,12}$"


class ObserveRequest(BaseModel):
    """Ask a node for its signed observation of one feed."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=REQUEST_ID)
    feed: str = Field(pattern=FEED)


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


class SignResponse(BaseModel):
    """A node's signature over a report digest, and what it signed."""

    node: str
    signer: str
    signature: str
    digest: str
    price: int


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
