"""Anchoring the attestation log onchain, and proving one entry's inclusion."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cre_adapters.evm import Artifacts, ChainWriter, Deployment, contract
from verifier import (
    AttestationLog,
    LogEntry,
    VerifierError,
    merkle_proof,
    merkle_root,
    verify_proof,
)
from verifier import leaf as merkle_leaf


class AnchorResult(BaseModel):
    """What `vouch log anchor` did."""

    index: int
    from_seq: int
    to_seq: int
    root: str
    tx_hash: str


class InclusionProof(BaseModel):
    """Everything needed to check one entry against an onchain anchor."""

    seq: int
    entry_hash: str
    anchor_index: int
    anchor: str
    root: str
    leaf: str
    proof: list[str]
    verified_locally: bool
    verified_onchain: bool


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _leaves(entries: list[LogEntry]) -> list[bytes]:
    return [merkle_leaf(e.seq, bytes.fromhex(e.entry_hash[2:])) for e in entries]


def _anchor_contract(writer: ChainWriter, artifacts: Artifacts, deployment: Deployment) -> Any:
    return contract(
        writer.w3, artifacts, "AttestationAnchor", deployment.address("AttestationAnchor")
    )


def anchor_log(
    log: AttestationLog,
    writer: ChainWriter,
    artifacts: Artifacts,
    deployment: Deployment,
    minimum: int = 1,
) -> AnchorResult | None:
    """Anchor every entry after the last anchored one, if there are at least ``minimum``."""
    anchor = _anchor_contract(writer, artifacts, deployment)
    start = int(anchor.functions.anchoredUpTo().call()) + 1
    entries = [e for e in log.entries() if e.seq >= start]
    if len(entries) < minimum or not entries:
        return None
    root = merkle_root(_leaves(entries))
    head = entries[-1]
    receipt = writer.transact(
        anchor.functions.anchor(root, start, head.seq, bytes.fromhex(head.entry_hash[2:]))
    )
    return AnchorResult(
        index=int(anchor.functions.anchorCount().call()) - 1,
        from_seq=start,
        to_seq=head.seq,
        root=_hex(root),
        tx_hash=_hex(bytes(receipt["transactionHash"])),
    )


def prove_entry(
    log: AttestationLog, seq: int, writer: ChainWriter, artifacts: Artifacts, deployment: Deployment
) -> InclusionProof:
    """Build the Merkle proof of entry ``seq`` and check it locally and against the onchain root.

    Raises:
        VerifierError: if the entry does not exist or is not anchored yet.
    """
    anchor = _anchor_contract(writer, artifacts, deployment)
    try:
        entry = log.get(seq)
    except KeyError:
        raise VerifierError(f"no log entry #{seq}") from None
    for index in range(int(anchor.functions.anchorCount().call())):
        root, _, first, last, _ = anchor.functions.getAnchor(index).call()
        if first <= seq <= last:
            entries = [log.get(s) for s in range(first, last + 1)]
            leaves = _leaves(entries)
            proof = merkle_proof(leaves, seq - first)
            onchain = anchor.functions.verify(
                index, seq, bytes.fromhex(entry.entry_hash[2:]), proof
            ).call()
            return InclusionProof(
                seq=seq,
                entry_hash=entry.entry_hash,
                anchor_index=index,
                anchor=anchor.address,
                root=_hex(root),
                leaf=_hex(leaves[seq - first]),
                proof=[_hex(p) for p in proof],
                verified_locally=verify_proof(leaves[seq - first], proof, bytes(root)),
                verified_onchain=bool(onchain),
            )
    raise VerifierError(f"entry #{seq} is not anchored yet: run `vouch log anchor` first")
