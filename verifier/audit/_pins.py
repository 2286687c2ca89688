"""Trust roots from outside the log: the deployment the auditor pins (manifest or flags)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._errors import CannotAudit
from ._types import Pins

# option -> the contract's name in a vouch deployment manifest
CONTRACTS = {
    "forwarder": "Forwarder",
    "anchor": "AttestationAnchor",
    "gate": "SettlementGate",
    "gateway": "CrossChainGateway",
}
REQUIRED = ("forwarder", "gate", "anchor")  # the gateway is pinned when the deployment has one
PIN_FLAGS = "--manifest FILE, or --chain-id --forwarder --gate --anchor [--gateway]"
TRUST_LOG_FLAG = "--trust-log-addresses"


def read_manifest(path: Path) -> dict[str, Any]:
    """A deployment manifest (vouch's deployments/<chain id>.json), as a dict."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CannotAudit(f"cannot read the manifest {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("contracts", {}), dict):
        raise CannotAudit(f"{path} is not a deployment manifest (no 'contracts' object)")
    return data


def resolve_pins(
    manifest: Path | None,
    flags: dict[str, str | None],
    chain_id: int | None,
    trust_log: bool,
    source: str | None = None,
) -> Pins | None:
    """The pins from a manifest and/or flags (flags win); None only with ``trust_log``.

    Raises:
        CannotAudit: nothing pinned and ``trust_log`` not given, or a pin is
            missing (naming the flags), or the manifest is unreadable.
    """
    data = read_manifest(manifest) if manifest is not None else {}
    contracts = data.get("contracts") or {}
    addresses = {o: flags.get(o) or contracts.get(name) for o, name in CONTRACTS.items()}
    chain = chain_id if chain_id is not None else data.get("chain_id")
    if not any(addresses.values()) and chain is None:
        if trust_log:
            return Pins(source=f"the log itself ({TRUST_LOG_FLAG})", from_log=True)
        raise CannotAudit(
            f"no trust roots pinned: pass {PIN_FLAGS} (the deployment you trust, from outside "
            f"the log), or {TRUST_LOG_FLAG} to accept the addresses the log names (weaker: "
            "the operator wrote them)"
        )
    missing = [f"--{o.replace('_', '-')}" for o in REQUIRED if not addresses.get(o)]
    if chain is None:
        missing.insert(0, "--chain-id")
    if missing or chain is None:
        raise CannotAudit(f"incomplete pins: also pass {' '.join(missing)} (or --manifest FILE)")
    extra = data.get("workflows")  # workflows as code registered in this deployment
    workflows = tuple(
        (str(w["id"]), str(w["owner"]))
        for w in (
            data.get("workflow"),
            data.get("feed_workflow"),
            *(extra if isinstance(extra, list) else []),
        )
        if isinstance(w, dict) and "id" in w and "owner" in w
    )
    don = data.get("don")
    return Pins(
        chain_id=int(chain),
        forwarder=addresses["forwarder"],
        gate=addresses["gate"],
        anchor=addresses["anchor"],
        gateway=addresses["gateway"],
        source=source or (f"manifest {manifest}" if manifest is not None else "flags"),
        workflows=workflows,
        don_id=int(don["don_id"]) if isinstance(don, dict) and "don_id" in don else None,
    )
