"""What the coordinator and a node say about a workflow execution (JSON over HTTP)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vouch.verifier import ReportMetadata


class StepRequest(BaseModel):
    """Run handler ``handler`` of the module at ``module`` (sha256 ``sha256``) up to its next call.

    ``steps`` holds the DON's signed observations of every call made so far;
    the node recomputes their consensus itself.
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=128)
    module: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    handler: str
    event: dict[str, Any] = {}
    config: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    limits: Literal["default", "cre"] = "default"
    rpc_url: str | None = None  # the chain to read when the node has no RPC URL of its own


class SignRequest(StepRequest):
    """Replay the whole callback on ``steps`` and sign the report it makes, if it is ``payload``."""

    metadata: ReportMetadata
    chain_id: int
    receiver: str
    payload: str
    sequence: int


class StepAnswer(BaseModel):
    """A node's answer: the call it executed (signed per field), or the callback's outcome."""

    model_config = ConfigDict(extra="forbid")

    node: str
    address: str
    step: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None
    error_kind: str | None = None
