"""Merkle trees over log entries, verifiable by OpenZeppelin's MerkleProof (sorted pairs).

Leaf of entry ``seq``: ``keccak256(keccak256(abi.encode(uint64 seq, bytes32 entryHash)))``
(double hashed, so a leaf can never be confused with an inner node). An odd node at
the end of a level is carried up unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._canonical import keccak


def leaf(seq: int, entry_hash: bytes) -> bytes:
    """The leaf for entry ``seq`` with hash ``entry_hash``."""
    return keccak(keccak(seq.to_bytes(32, "big") + entry_hash))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a < b else b + a)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append(
            [
                _pair(below[i], below[i + 1]) if i + 1 < len(below) else below[i]
                for i in range(0, len(below), 2)
            ]
        )
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root over ``leaves`` (in log order)."""
    return _levels(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes from ``leaves[index]`` up to the root."""
    proof = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def verify_proof(leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True when ``proof`` leads from ``leaf_hash`` to ``root``."""
    node = leaf_hash
    for sibling in proof:
        node = _pair(node, sibling)
    return node == root
