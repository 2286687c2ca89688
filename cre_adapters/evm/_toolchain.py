"""Where the pinned native toolchain (npm packages) lives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .._errors import ChainError

_ANVIL = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
_SHIM = "scripts/solc-shim.js"


@dataclass(frozen=True)
class Toolchain:
    """Paths to the repo root, anvil, the solc shim and the contract sources."""

    root: Path

    @property
    def anvil(self) -> Path:
        """The anvil binary from ``@foundry-rs/anvil-linux-amd64``."""
        return self._existing(_ANVIL)

    @property
    def solc(self) -> Path:
        """The solcjs shim that stands in for native solc."""
        return self._existing(_SHIM)

    @property
    def contracts(self) -> Path:
        """The Solidity sources."""
        return self._existing("contracts/src")

    @property
    def node_modules(self) -> Path:
        """Where OpenZeppelin and solcjs are installed."""
        return self._existing("node_modules")

    def _existing(self, relative: str) -> Path:
        path = self.root / relative
        if not path.exists():
            raise ChainError(
                f"{path} is missing: the pinned toolchain is not installed; run `make setup` "
                "(it runs `npm ci`) in the vouch checkout, or set VOUCH_TOOLCHAIN_DIR"
            )
        return path


def find_toolchain(explicit: Path | None = None) -> Toolchain:
    """Locate the toolchain: ``explicit``, ``$VOUCH_TOOLCHAIN_DIR``, or the checkout holding this file."""
    if explicit is not None:
        return Toolchain(explicit.resolve())
    env = os.environ.get("VOUCH_TOOLCHAIN_DIR")
    if env:
        return Toolchain(Path(env).resolve())
    for parent in Path(__file__).resolve().parents:
        if (parent / "package.json").exists() and (parent / "contracts").is_dir():
            return Toolchain(parent)
    return Toolchain(Path.cwd())
