"""vouch: verifiable onchain agent workflows.

Agents propose, a local DON attests, contracts verify, a hash-chained log
proves it. This package is the application: settings, the `vouch` CLI, and
the wiring of ``agents`` -> ``cre_adapters`` -> chain -> ``verifier``.

The names below are imported on first use (PEP 562), so the `vouch` console
script (``vouch._main``) starts without loading web3 first and a Ctrl-C while
the CLI loads exits quietly.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._errors import MissingEnvironment, SettingsError, VouchError
    from ._settings import VouchSettings, load_settings
    from ._settlement import ChainSubmitter, action_hash
    from ._stack import Chain, Stack
    from ._submitter import AttestedChainSubmitter

_WHERE = {
    "MissingEnvironment": "._errors",
    "SettingsError": "._errors",
    "VouchError": "._errors",
    "VouchSettings": "._settings",
    "load_settings": "._settings",
    "ChainSubmitter": "._settlement",
    "action_hash": "._settlement",
    "Chain": "._stack",
    "Stack": "._stack",
    "AttestedChainSubmitter": "._submitter",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vouch' has no attribute {name!r}")


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
