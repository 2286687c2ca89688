"""Fault modes a node can be told to have, in the DON config or at runtime (admin endpoint).

Each mode is what a real faulty or malicious node does, and each has a
defence elsewhere:

============== ================================================= ===============================
mode           what the node does                                who catches it
============== ================================================= ===============================
down           drops every connection without an answer, as a   coordinator: unreachable
               dead process (runtime; /admin still answers),
               is not started at all (DON config), or with
               ``kill`` its process exits (runtime)
slow           ``slow_at="link"``: answers ``delay`` seconds     coordinator deadline
               late (works at once, a slow link);
               ``slow_at="server"``: starts working ``delay``
               seconds late (a slow server); each ask costs
               its delay once, concurrent asks in parallel
flaky          fails a request with probability ``error_rate``   coordinator: HTTP 500
stale          observes as of ``stale_by`` seconds ago           coordinator + signers: max age
lie            reports ``value * (1 + lie_bps / 10_000)``,       median (<= f); the band check
               validly signed                                    keeps outliers out of the set
equivocate     consistent per asker, different across askers:   coordinator asks twice, as two
               the first asker of a round gets the honest       askers (echo); signers refuse a
               value, the k-th ``value * (1 + k*lie_bps/1e4)``, second conflicting answer
               and each asker the same signed answer again
bad-signature  corrupts its signatures (r = 0)                   signature recovery
wrong-key      signs with a key the DON does not know            signer != configured address
crash-mid-     answers /observe, then its process dies on the   coordinator: the next observer
round          first /sign request, without answering          signs instead (unreachable)
============== ================================================= ===============================

An asker is one client connection (its address and port, as a node sees it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultMode = Literal[
    "none",
    "down",
    "slow",
    "flaky",
    "stale",
    "lie",
    "equivocate",
    "bad-signature",
    "wrong-key",
    "crash-mid-round",
]
FAULT_MODES: tuple[str, ...] = FaultMode.__args__  # type: ignore[attr-defined]


class FaultSpec(BaseModel):
    """How a node misbehaves; ``mode="none"`` is an honest node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: FaultMode = "none"
    delay: float = Field(default=2.0, ge=0, le=600, description="slow: seconds added")
    slow_at: Literal["link", "server"] = Field(
        default="link", description="slow: a slow link (late answer) or a slow server (late work)"
    )
    kill: bool = Field(default=False, description="down: the node's process exits (runtime)")
    error_rate: float = Field(default=0.5, ge=0, le=1, description="flaky: share of failures")
    stale_by: int = Field(default=3600, ge=1, description="stale: seconds in the past")
    lie_bps: int = Field(default=5000, ge=-9999, le=10**6, description="lie: offset in bps")
    seed: int = Field(default=0, description="flaky: seed of the failure draws")


def corrupt(signature: bytes) -> bytes:
    """A signature that no longer recovers: r set to zero, s and v kept."""
    return bytes(32) + signature[32:]


def lie(value: int, bps: int) -> int:
    """``value`` moved by ``bps`` basis points."""
    return value * (10_000 + bps) // 10_000


__all__ = ["FAULT_MODES", "FaultMode", "FaultSpec", "corrupt", "lie"]
