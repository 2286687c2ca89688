"""Exceptions raised by cre_adapters.

The tree::

    CreError
    ├── ConfigError            a DON, node or workflow configuration is invalid
    ├── KeystoreError          a keystore file is missing, unreadable or the password is wrong
    ├── DataSourceError        a data source cannot answer (unknown feed, fetch failed)
    ├── NodeError              a node answered badly (HTTP error, bad signature, wrong signer)
    ├── QuorumNotReached       fewer than the required nodes answered correctly
    ├── ConsensusFailed        an aggregation mode's rule is not met by the observations
    ├── SigningRefused         a node refused to sign a report it could not re-derive
    └── ChainError             talking to the chain failed
        ├── CompileError       solc rejected the sources, or the toolchain is missing
        ├── AnvilError         the local anvil chain could not be started
        └── ContractRevert     a transaction or call reverted (custom error decoded)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class CreError(Exception):
    """Root of every error raised by cre_adapters."""


class ConfigError(CreError):
    """A DON, node or workflow configuration is invalid."""


class KeystoreError(CreError):
    """A keystore file is missing, unreadable, or its password is wrong."""


class DataSourceError(CreError):
    """A data source cannot answer: unknown feed, or the fetch failed."""


CAUSES: dict[str, str] = {
    "down": "unreachable (process dead or connection refused)",
    "slow": "no answer before the deadline",
    "stale": "answered with an observation older than max_observation_age",
    "out-of-band": "observed a value outside the band around the agreeing nodes",
    "bad-signature": "its signature does not recover",
    "wrong-key": "signed with a key that is not its configured one",
    "earlier-attempt": "answered with its cached observation of an earlier attempt",
    "equivocation": "signed two different answers for one round",
    "refused": "refused the request",
    "malformed": "answered with a malformed body",
    "error": "answered with an error",
    "unused": "answered validly; the set was complete without it",
    "late": "still answering when the set was complete",
    "not-asked": "held in reserve; the set was complete without asking it",
}
"""Why a node is missing from a round (``NodeError.cause``, ``QuorumNotReached.causes``)."""

_HINTS: dict[str, str] = {
    "down": "start it (`vouch don up`) or heal it (`vouch don fault NODE none`)",
    "slow": "raise VOUCH_NODE_TIMEOUT or heal it",
    "stale": (
        "a stale answer of this very round means the round is too old to finish: start a new "
        "attempt (a new round id), e.g. `vouch runs resume RUN`; else check the node's source "
        "and clock"
    ),
    "earlier-attempt": "the node replays old answers: heal or replace it",
    "equivocation": "the node is Byzantine: replace its key",
    "out-of-band": "the node's source disagrees with the others: check or replace it",
}


class NodeError(CreError):
    """A node answered with an error, a malformed body or a bad signature.

    ``cause`` is one of ``CAUSES``; ``evidence`` holds the validly signed
    answers (SignedObservation) that show the fault, when there are any.
    """

    def __init__(
        self, node: str, reason: str, cause: str = "error", evidence: Sequence[Any] = ()
    ) -> None:
        super().__init__(f"node {node}: {reason}")
        self.node = node
        self.reason = reason
        self.cause = cause if cause in CAUSES else "error"
        self.evidence = list(evidence)


class QuorumNotReached(CreError):
    """Fewer nodes than the protocol needs gave a valid answer.

    ``failures`` maps each failed node to what went wrong, ``causes`` to its
    cause (one of ``CAUSES``); the message's hint follows from the causes.
    """

    def __init__(
        self,
        stage: str,
        needed: int,
        got: int,
        failures: Mapping[str, str],
        causes: Mapping[str, str] | None = None,
    ) -> None:
        causes = {node: (causes or {}).get(node, "error") for node in failures}
        detail = "; ".join(
            f"{node}: {why} [{causes[node]}]" for node, why in sorted(failures.items())
        )
        super().__init__(
            f"quorum not reached while {stage}: needed {needed} valid answers, got {got}"
            + (f" (failed: {detail})" if detail else "")
            + ". "
            + _hint(causes)
        )
        self.stage = stage
        self.needed = needed
        self.got = got
        self.failures = dict(failures)
        self.causes = causes


def _hint(causes: Mapping[str, str]) -> str:
    """What to do, from what actually went wrong (most common cause first)."""
    counts: dict[str, int] = {}
    for cause in causes.values():
        counts[cause] = counts.get(cause, 0) + 1
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    parts = [
        f"{counts[c]} {c}: {_HINTS.get(c, 'see `vouch don status` and the node logs')}"
        for c in ranked
    ]
    return ("; ".join(parts) + ".") if parts else "Check `vouch don status`."


class ConsensusFailed(CreError):
    """The observations do not meet an aggregation mode's rule (``mode``, ``reason``)."""

    def __init__(self, mode: str, reason: str) -> None:
        super().__init__(f"{mode} consensus failed: {reason}")
        self.mode = mode
        self.reason = reason


class SigningRefused(CreError):
    """A node refused to sign: the request did not match what it re-derived."""


class ChainError(CreError):
    """Talking to the chain failed."""


class CompileError(ChainError):
    """The Solidity sources did not compile, or the compiler is missing."""


class AnvilError(ChainError):
    """The local anvil chain could not be started or reached."""


class ContractRevert(ChainError):
    """A contract call reverted; ``name`` and ``args`` hold the decoded custom error."""

    def __init__(self, name: str, args: Mapping[str, Any], data: str = "") -> None:
        rendered = ", ".join(f"{k}={v}" for k, v in args.items())
        super().__init__(f"reverted with {name}({rendered})")
        self.name = name
        self.args_ = dict(args)
        self.data = data
