"""Exceptions raised by verifier.

The tree::

    VerifierError
    ├── EncodingError       bytes or fields do not fit the report format
    ├── SignatureError      a signature is malformed, high-s, or does not recover
    ├── ConsensusError      not enough observations to aggregate
    ├── LogIntegrityError   the attestation log cannot be opened or is not a vouch log
    └── CannotAudit         no trust roots pinned, no chain, a pinned contract unreadable
"""

from __future__ import annotations


class VerifierError(Exception):
    """Root of every error raised by verifier."""


class EncodingError(VerifierError):
    """Bytes or fields do not fit the report format."""


class SignatureError(VerifierError):
    """A signature is malformed, has a high s, or does not recover to an address."""


class ConsensusError(VerifierError):
    """Too few observations to aggregate."""


class LogIntegrityError(VerifierError):
    """The attestation log cannot be opened, or it is not a vouch log."""


class CannotAudit(VerifierError):
    """The audit cannot run: no trust roots pinned, no chain at the URL, a pinned contract unreadable."""
