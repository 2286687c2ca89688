"""Exceptions raised by the vouch application.

The tree::

    VouchError
    ├── SettingsError      settings (env, vouch.toml) are invalid
    └── MissingEnvironment the chain, deployment or DON a command needs is not there

Errors from the libraries (``verifier.VerifierError``, ``cre_adapters.CreError``,
``agents.AgentError``) pass through unchanged; the CLI shows all of them as a
one-line message with a hint and a non-zero exit code.
"""

from __future__ import annotations


class VouchError(Exception):
    """Root of every error raised by the vouch application."""


class SettingsError(VouchError):
    """Settings from the environment or vouch.toml are invalid."""


class MissingEnvironment(VouchError):
    """The chain, deployment or DON a command needs is not there."""
