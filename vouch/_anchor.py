"""Anchoring the attestation log onchain, and proving one entry's inclusion.

``AnchorPolicy`` says when: once ``every`` entries wait, or once the oldest
waiting entry is ``seconds`` old, whichever comes first. Whatever appends to the
home's log in a long run (the settlement submitter, a feeds workflow's
deliveries, the http settlement server) calls ``AnchorPolicy.maybe_anchor``
after it appends; `vouch down` anchors whatever is left. See docs/log.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from web3 import Web3

from vouch.cre_adapters import ContractRevert
from vouch.cre_adapters.evm import Artifacts, ChainWriter, Deployment, contract
from vouch.verifier import (
    LogEntry,
    LogStore,
    VerifierError,
    merkle_proof,
    merkle_root,
    verify_proof,
)
from vouch.verifier import leaf as merkle_leaf

from ._settings import VouchSettings
from ._stack import Chain


class AnchorResult(BaseModel):
    """What `vouch log anchor` did."""

    index: int
    from_seq: int
    to_seq: int
    root: str
    tx_hash: str


class InclusionProof(BaseModel):
    """Everything needed to check one entry against an onchain anchor.

    ``entry_hash`` is recomputed from the entry's content; ``stored_hash`` is
    what the log says. ``content_matches_hash`` is False for an edited entry,
    whose proof then fails: the leaf is built from the recomputed hash.
    """

    seq: int
    entry_hash: str
    stored_hash: str
    content_matches_hash: bool
    anchor_index: int
    anchor: str
    root: str
    leaf: str
    proof: list[str]
    verified_locally: bool
    verified_onchain: bool

    @property
    def verified(self) -> bool:
        """The entry, as its content says, is in the onchain anchor."""
        return self.content_matches_hash and self.verified_locally and self.verified_onchain


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _leaves(entries: list[LogEntry]) -> list[bytes]:
    return [merkle_leaf(e.seq, bytes.fromhex(e.entry_hash[2:])) for e in entries]


def _anchor_contract(writer: ChainWriter, artifacts: Artifacts, deployment: Deployment) -> Any:
    return contract(
        writer.w3, artifacts, "AttestationAnchor", deployment.address("AttestationAnchor")
    )


def anchor_log(
    log: LogStore,
    writer: ChainWriter,
    artifacts: Artifacts,
    deployment: Deployment,
    minimum: int = 1,
) -> AnchorResult | None:
    """Anchor every entry after the last anchored one, if there are at least ``minimum``."""
    anchor = _anchor_contract(writer, artifacts, deployment)
    start = int(anchor.functions.anchoredUpTo().call()) + 1
    entries = log.entries_after(start - 1)
    if len(entries) < minimum or not entries:
        return None
    root = merkle_root(_leaves(entries))
    head = entries[-1]
    call = anchor.encode_abi(
        "anchor", args=[root, start, head.seq, bytes.fromhex(head.entry_hash[2:])]
    )
    # Each anchored entry's hash rides after the arguments (the ABI decoder ignores trailing
    # calldata): an auditor reads them back from the transaction, checks they fold to the
    # root the contract stored, and so names the exact entry an edit starts at. ~512 gas each.
    committed = b"".join(bytes.fromhex(e.entry_hash[2:]) for e in entries)
    receipt = writer.transact_data(anchor.address, bytes.fromhex(call[2:]) + committed)
    return AnchorResult(
        index=int(anchor.functions.anchorCount().call()) - 1,
        from_seq=start,
        to_seq=head.seq,
        root=_hex(root),
        tx_hash=_hex(bytes(receipt["transactionHash"])),
    )


_ANCHORING = threading.Lock()  # one anchor transaction at a time in this process


@dataclass(frozen=True)
class AnchorPolicy:
    """When the log is anchored: ``every`` entries waiting, or the oldest waiting ``seconds`` old.

    Checked by ``maybe_anchor``, which whatever appends calls after appending
    (so "T seconds" is honoured at the next append or check after the oldest
    waiting entry turns T seconds old; `vouch down` anchors the rest).

    Args:
        every: anchor once this many entries wait (VOUCH_ANCHOR_EVERY).
        seconds: anchor once the oldest waiting entry is this old (VOUCH_ANCHOR_SECONDS).
        clock: unix seconds now (tests pass a controllable one).
    """

    every: int = 25
    seconds: float = 300.0
    clock: Callable[[], float] = field(default=time.time, compare=False)

    @classmethod
    def from_settings(cls, settings: Any) -> AnchorPolicy:
        """The policy of a ``VouchSettings`` (``anchor_every``, ``anchor_seconds``)."""
        return cls(every=settings.anchor_every, seconds=settings.anchor_seconds)

    def due(self, waiting: int, oldest_ms: int | None) -> bool:
        """Whether ``waiting`` entries, the oldest created at ``oldest_ms``, call for an anchor."""
        if waiting <= 0:
            return False
        if waiting >= self.every:
            return True
        return oldest_ms is not None and self.clock() * 1000 - oldest_ms >= self.seconds * 1000

    def maybe_anchor(
        self,
        log: LogStore,
        writer: ChainWriter,
        artifacts: Artifacts,
        deployment: Deployment,
        on_skip: Callable[[str], None] | None = None,
    ) -> AnchorResult | None:
        """Anchor every waiting entry if the policy says it is time; None if it is not.

        Another process anchoring the same entries first is not an error: the
        anchor it made stands. Anchoring is the log owner's act (the contract's
        owner, the deployer): a writer that does not own AttestationAnchor (a
        worker on its own key) anchors nothing and tells ``on_skip`` why,
        instead of sending a transaction that reverts; the owner anchors what
        waits (`vouch log anchor`, `vouch down`, or a worker on the owner's key).
        """
        with _ANCHORING:
            anchor = _anchor_contract(writer, artifacts, deployment)
            upto = int(anchor.functions.anchoredUpTo().call())
            waiting = log.pending_after(upto)
            if not self.due(*waiting):
                return None
            owner = str(anchor.functions.owner().call())
            if owner.lower() != writer.address.lower():
                if on_skip is not None:
                    on_skip(
                        f"{waiting[0]} log entries wait for an anchor, but this key "
                        f"{writer.address} is not the AttestationAnchor's owner {owner}: "
                        "anchor them with the owner's key (`vouch log anchor`)"
                    )
                return None
            try:
                return anchor_log(log, writer, artifacts, deployment)
            except ContractRevert as exc:
                if exc.name == "InvalidRange":  # someone anchored meanwhile
                    return None
                raise


def anchor_everything(
    log: LogStore, writer: ChainWriter, artifacts: Artifacts, deployment: Deployment
) -> AnchorResult | None:
    """Anchor every waiting entry now (`vouch log anchor`, `vouch down`); None if none wait."""
    with _ANCHORING:
        return anchor_log(log, writer, artifacts, deployment)


def live_manifest(settings: VouchSettings, chain: Chain) -> Deployment | None:
    """The deployment manifest of ``chain`` if it names a live AttestationAnchor (reads only)."""
    path = settings.deployment_path(chain.chain_id)
    if not path.exists():
        return None
    manifest = Deployment.load(path)
    address = manifest.contracts.get("AttestationAnchor")
    if address is None or not chain.web3().eth.get_code(Web3.to_checksum_address(address)):
        return None
    return manifest


def prove_entry(
    log: LogStore, seq: int, w3: Web3, artifacts: Artifacts, deployment: Deployment
) -> InclusionProof:
    """Build the Merkle proof of entry ``seq`` and check it locally and against the onchain root.

    The entry's hash is recomputed from its content (never taken from the log):
    an edited entry, re-hashed or not, does not verify.

    Raises:
        VerifierError: if the entry does not exist or is not anchored yet.
    """
    anchor = contract(w3, artifacts, "AttestationAnchor", deployment.address("AttestationAnchor"))
    try:
        entry = log.get(seq)
    except KeyError:
        raise VerifierError(f"no log entry #{seq}") from None
    recomputed = entry.compute_hash() if entry.is_canonical() else ""
    matches = recomputed == entry.entry_hash
    own_hash = recomputed if recomputed.startswith("0x") else "0x" + "00" * 32
    for index in range(int(anchor.functions.anchorCount().call())):
        root, _, first, last, _ = anchor.functions.getAnchor(index).call()
        if first <= seq <= last:
            entries = []
            for s in range(first, last + 1):
                try:
                    entries.append(log.get(s))
                except KeyError:
                    raise VerifierError(
                        f"entry #{s} of anchor {index} (#{first}..#{last}) is missing from the "
                        "log: the proof cannot be built (run `vouch audit`)"
                    ) from None
            leaves = _leaves(entries)
            leaves[seq - first] = merkle_leaf(seq, bytes.fromhex(own_hash[2:]))
            proof = merkle_proof(leaves, seq - first)
            onchain = anchor.functions.verify(index, seq, bytes.fromhex(own_hash[2:]), proof).call()
            return InclusionProof(
                seq=seq,
                entry_hash=recomputed or "(the payload is not canonical JSON: edited)",
                stored_hash=entry.entry_hash,
                content_matches_hash=matches,
                anchor_index=index,
                anchor=anchor.address,
                root=_hex(root),
                leaf=_hex(leaves[seq - first]),
                proof=[_hex(p) for p in proof],
                verified_locally=verify_proof(leaves[seq - first], proof, bytes(root)),
                verified_onchain=bool(onchain),
            )
    raise VerifierError(f"entry #{seq} is not anchored yet: run `vouch log anchor` first")
