"""Compile the contracts with py-solc-x through the solcjs shim; cache artifacts by source hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .._errors import CompileError
from ._toolchain import Toolchain

SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class Artifact(BaseModel):
    """A compiled contract: its ABI and creation bytecode."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str


class Artifacts(BaseModel):
    """All compiled contracts of one build, keyed by contract name."""

    source_hash: str
    contracts: dict[str, Artifact]

    def get(self, name: str) -> Artifact:
        """The artifact called ``name``.

        Raises:
            CompileError: if no contract has that name.
        """
        try:
            return self.contracts[name]
        except KeyError:
            raise CompileError(
                f"no compiled contract {name!r}; have {sorted(self.contracts)}"
            ) from None

    def all_abis(self) -> list[dict[str, Any]]:
        """Every ABI entry of every contract (for decoding errors and events)."""
        return [entry for artifact in self.contracts.values() for entry in artifact.abi]


# the name every source is compiled under, wherever the files live (a checkout, an installed
# wheel): the bytecode's metadata hash depends on it, so one name keeps builds identical
SOURCE_PREFIX = "contracts/src"


def _sources(contracts: Path) -> dict[str, str]:
    return {
        f"{SOURCE_PREFIX}/{path.relative_to(contracts).as_posix()}": path.read_text()
        for path in sorted(contracts.rglob("*.sol"))
    }


def _contracts_of(toolchain: Toolchain, contracts: Path | None) -> Path:
    folder = contracts if contracts is not None else toolchain.contracts
    if folder is None or not folder.is_dir():
        raise CompileError(f"no Solidity sources folder to compile (got {folder})")
    return folder


def sources_digest(contracts: Path) -> str:
    """A hash of the ``.sol`` files under ``contracts`` and the compiler settings (no toolchain)."""
    blob = json.dumps([_sources(contracts), SOLC_SETTINGS], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def _source_hash(sources: dict[str, str], toolchain: Toolchain) -> str:
    oz = (toolchain.node_modules / "@openzeppelin/contracts/package.json").read_text()
    solc = (toolchain.node_modules / "solc/package.json").read_text()
    blob = json.dumps([sources, SOLC_SETTINGS, oz, solc], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def compile_contracts(
    toolchain: Toolchain, cache_dir: Path, contracts: Path | None = None
) -> Artifacts:
    """Compile every ``**/*.sol`` under ``contracts`` (default ``toolchain.contracts``).

    The build is cached in ``cache_dir`` by a hash of the sources, the settings and the
    OpenZeppelin and solc versions.

    Raises:
        CompileError: if solc reports an error.
        ToolchainMissing: solc or OpenZeppelin's sources are not installed.
    """
    sources = _sources(_contracts_of(toolchain, contracts))
    digest = _source_hash(sources, toolchain)
    cached = cache_dir / f"artifacts-{digest[:16]}.json"
    if cached.exists():
        return Artifacts.model_validate_json(cached.read_text())
    artifacts = Artifacts(source_hash=digest, contracts=_run_solc(toolchain, sources))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(artifacts.model_dump_json())
    tmp.replace(cached)
    return artifacts


def _run_solc(toolchain: Toolchain, sources: dict[str, str]) -> dict[str, Artifact]:
    import solcx
    from solcx.exceptions import SolcError

    standard_input = {
        "language": "Solidity",
        "sources": {path: {"content": text} for path, text in sources.items()},
        "settings": SOLC_SETTINGS,
    }
    try:
        output = solcx.compile_standard(
            standard_input,
            solc_binary=str(toolchain.solc),
            base_path=str(toolchain.root),
            allow_paths=[str(toolchain.root)],
        )
    except SolcError as exc:
        raise CompileError(f"solc failed: {exc}") from exc
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("solc errors:\n" + "\n".join(e["formattedMessage"] for e in errors))
    return {
        name: Artifact(
            name=name, source=path, abi=out["abi"], bytecode=out["evm"]["bytecode"]["object"]
        )
        for path, contracts in output["contracts"].items()
        if path in sources
        for name, out in contracts.items()
    }
