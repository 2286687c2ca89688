"""A user's receiver contracts: compiled from their project together with vouch's ``ReceiverBase``.

A project's Solidity files (``contracts/*.sol`` under the project) import
vouch's base as ``import {ReceiverBase} from "vouch/ReceiverBase.sol";``;
they are compiled with vouch's own sources and settings (solcjs through the
shim), and cached by the hash of everything that went in.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from pathlib import Path
from typing import Any

from ..evm import Artifacts
from ..evm._compile import SOLC_SETTINGS, Artifact, _run_solc, _sources
from ..evm._toolchain import Toolchain
from ._errors import WorkflowDefinitionError

PREFIX = "project/"


def compile_project(toolchain: Toolchain, contracts_dir: Path, cache_dir: Path) -> Artifacts:
    """The contracts of ``contracts_dir`` (``*.sol``, recursively), compiled with vouch's.

    Raises:
        WorkflowDefinitionError: no Solidity file there.
        CompileError: solc refused them (its messages name the file and line).
    """
    files = sorted(contracts_dir.rglob("*.sol"))
    if not files:
        raise WorkflowDefinitionError(f"no Solidity files (*.sol) under {contracts_dir}")
    own = {PREFIX + str(f.relative_to(contracts_dir)): f.read_text() for f in files}
    vouch = _sources(toolchain)
    # user files import "vouch/X.sol": give vouch's sources that name too (the same text)
    aliases = {
        "vouch/" + path.removeprefix("contracts/src/"): text
        for path, text in vouch.items()
        if path.startswith("contracts/src/")
    }
    sources = {**own, **_imported(own, aliases)}
    settings: dict[str, Any] = dict(SOLC_SETTINGS)
    blob = json.dumps([sources, settings], sort_keys=True).encode()
    digest = hashlib.sha256(blob).hexdigest()
    cached = cache_dir / f"project-{digest[:16]}.json"
    if cached.exists():
        return Artifacts.model_validate_json(cached.read_text())
    compiled = _run_solc(toolchain, sources)
    mine: dict[str, Artifact] = {
        name: art for name, art in compiled.items() if art.source.startswith(PREFIX)
    }
    artifacts = Artifacts(source_hash=digest, contracts=mine)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(artifacts.model_dump_json())
    tmp.replace(cached)
    return artifacts


IMPORT = re.compile(r"""import\s+(?:[^'"]*?from\s+)?["']([^"']+)["']""")


def _imported(own: dict[str, str], aliases: dict[str, str]) -> dict[str, str]:
    """The vouch sources the project's files import, directly or through each other."""
    found: dict[str, str] = {}
    todo = list(own.items())
    while todo:
        path, text = todo.pop()
        for target in IMPORT.findall(text):
            name = (
                posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
                if target.startswith(".")
                else target
            )
            if name in aliases and name not in found:
                found[name] = aliases[name]
                todo.append((name, aliases[name]))
    return found
