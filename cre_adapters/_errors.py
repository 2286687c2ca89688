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

from collections.abc import Mapping
from typing import Any


class CreError(Exception):
    """Root of every error raised by cre_adapters."""


class ConfigError(CreError):
    """A DON, node or workflow configuration is invalid."""


class KeystoreError(CreError):
    """A keystore file is missing, unreadable, or its password is wrong."""


class DataSourceError(CreError):
    """A data source cannot answer: unknown feed, or the fetch failed."""


class NodeError(CreError):
    """A node answered with an error, a malformed body or a bad signature."""

    def __init__(self, node: str, reason: str) -> None:
        super().__init__(f"node {node}: {reason}")
        self.node = node
        self.reason = reason


class QuorumNotReached(CreError):
    """Fewer nodes than the protocol needs gave a valid answer."""

    def __init__(self, stage: str, needed: int, got: int, failures: Mapping[str, str]) -> None:
        detail = "; ".join(f"{node}: {why}" for node, why in sorted(failures.items()))
        super().__init__(
            f"quorum not reached while {stage}: needed {needed} valid answers, got {got}"
            + (f" (failed: {detail})" if detail else "")
            + ". Check `vouch don status`; at most f nodes may be down or faulty."
        )
        self.stage = stage
        self.needed = needed
        self.got = got
        self.failures = dict(failures)


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
