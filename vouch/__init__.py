"""vouch: verifiable onchain agent workflows.

Agents propose, a local DON attests, contracts verify, a hash-chained log
proves it. This package is the application: settings, the `vouch` CLI, and
the wiring of ``agents`` -> ``cre_adapters`` -> chain -> ``verifier``.
"""

from ._errors import MissingEnvironment, SettingsError, VouchError
from ._settings import VouchSettings, load_settings
from ._settlement import ChainSubmitter, action_hash
from ._stack import Chain, Stack
from ._submitter import AttestedChainSubmitter

__all__ = [
    "AttestedChainSubmitter",
    "Chain",
    "ChainSubmitter",
    "MissingEnvironment",
    "SettingsError",
    "Stack",
    "VouchError",
    "VouchSettings",
    "action_hash",
    "load_settings",
]
