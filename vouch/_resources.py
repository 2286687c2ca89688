"""Files vouch ships inside its package, and the toolchain it runs with.

Installed from a wheel, vouch finds everything here, never relative to a checkout:

- ``contracts_dir()``: vouch's Solidity sources (ReceiverBase.sol, Forwarder.sol, ...);
- ``shipped_artifacts()``: those sources compiled when the wheel was built (``make wheel``);
- ``templates_dir()``: the ``vouch init`` project templates;
- ``toolchain()``: anvil, forge and solc, looked up as ``vouch.cre_adapters.evm.find_toolchain``
  documents (settings, PATH, ``~/.vouch/toolchain``), with a checkout's node_modules last.

In a checkout, ``vouch/_contracts/src`` and the files of ``vouch/_toolchain`` are symlinks to
``contracts/src``, ``package.json``, ``package-lock.json`` and ``scripts/solc-shim.js``, so the
same functions work there and edits show up at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._settings import VouchSettings
    from .cre_adapters.evm import Artifacts, Toolchain

_PACKAGE = Path(__file__).parent
ARTIFACTS_FILE = _PACKAGE / "_contracts" / "artifacts.json"


def contracts_dir() -> Path:
    """Vouch's Solidity sources (package data ``vouch/_contracts/src``)."""
    return _PACKAGE / "_contracts" / "src"


def templates_dir() -> Path:
    """The ``vouch init`` templates (package data ``vouch/templates``)."""
    return _PACKAGE / "templates"


def toolchain_files_dir() -> Path:
    """The pinned npm ``package.json``, its lock and the solcjs shim ``vouch toolchain install`` uses."""
    return _PACKAGE / "_toolchain"


def dev_checkout() -> Path | None:
    """The vouch checkout this package runs from (an editable install), or None.

    Only a symlinked ``vouch/_contracts/src`` (as committed in the repository) says so; an
    installed wheel holds real files there, so it never falls back to a checkout.
    """
    src = contracts_dir()
    if not src.is_symlink():
        return None
    root = src.resolve().parents[1]
    if (root / "package.json").is_file() and (root / "node_modules").is_dir():
        return root
    return None


def toolchain(settings: VouchSettings | None = None) -> Toolchain:
    """anvil, forge and solc for this run: settings, PATH, ``~/.vouch/toolchain``, a dev checkout."""
    from .cre_adapters.evm import find_toolchain

    tools = {}
    explicit = None
    if settings is not None:
        tools = {"anvil": settings.anvil, "forge": settings.forge, "solc": settings.solc}
        explicit = settings.toolchain_dir
    return find_toolchain(
        explicit, tools=tools, dev_checkout=dev_checkout(), contracts=contracts_dir()
    )


def solc_remappings(chain: Toolchain) -> list[str]:
    """Remappings for compiling a user's contract against vouch's and OpenZeppelin's sources.

    A user contract then writes ``import {ReceiverBase} from "vouch/ReceiverBase.sol";``.

    Raises:
        ToolchainMissing: OpenZeppelin's sources are not installed.
    """
    oz = chain.node_modules / "@openzeppelin" / "contracts"
    return [f"@openzeppelin/contracts/={oz}/", f"vouch/={contracts_dir()}/"]


def shipped_artifacts() -> Artifacts | None:
    """Vouch's contracts as compiled at wheel-build time, if they match the shipped sources."""
    from .cre_adapters.evm import Artifacts, sources_digest

    try:
        shipped = json.loads(ARTIFACTS_FILE.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(shipped, dict) or shipped.get("sources_digest") != sources_digest(
        contracts_dir()
    ):
        return None  # sources edited since (a checkout): compile them instead
    return Artifacts.model_validate(shipped["artifacts"])


def build_artifacts(chain: Toolchain, cache_dir: Path) -> Path:
    """Compile vouch's contracts and write them as the package's shipped artifacts."""
    from .cre_adapters.evm import compile_contracts, sources_digest

    artifacts = compile_contracts(chain, cache_dir, contracts_dir())
    blob = {
        "sources_digest": sources_digest(contracts_dir()),
        "artifacts": artifacts.model_dump(mode="json"),
    }
    tmp = ARTIFACTS_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(blob, sort_keys=True))
    tmp.replace(ARTIFACTS_FILE)
    return ARTIFACTS_FILE


def _main(argv: list[str]) -> int:
    """``python -m vouch._resources build-artifacts`` (``make artifacts``)."""
    if argv != ["build-artifacts"]:
        print("usage: python -m vouch._resources build-artifacts", file=sys.stderr)
        return 2
    from ._settings import load_settings

    settings = load_settings()
    path = build_artifacts(toolchain(settings), settings.home / "cache")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
