"""`vouch toolchain install`: the one documented command installs a toolchain vouch then finds.

Real npm (`npm ci` of vouch's pinned package.json and lock, from npm's cache or registry) into a
temp dir; then the installed anvil and solc shim answer, and the lookup finds them there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vouch.cre_adapters.evm import find_toolchain

pytestmark = [pytest.mark.integration, pytest.mark.slow]
VOUCH = str(Path(sys.executable).parent / "vouch")


def test_install_puts_a_working_toolchain_where_the_lookup_finds_it(tmp_path: Path) -> None:
    target = tmp_path / "toolchain"
    done = subprocess.run(
        [VOUCH, "toolchain", "install", "--dir", str(target)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "VOUCH_HOME": str(tmp_path / "home")},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"export VOUCH_TOOLCHAIN_DIR={target}" in " ".join(done.stdout.split())
    chain = find_toolchain(target, env={"PATH": ""}, user_dir=tmp_path / "none")
    for tool in ("anvil", "forge", "solc"):
        assert chain.origin(tool) == "toolchain_dir", tool
        assert getattr(chain, tool).is_relative_to(target), tool
    assert chain.node_modules == target / "node_modules"
    anvil = subprocess.run(
        [str(chain.anvil), "--version"], capture_output=True, text=True, check=False
    )
    assert anvil.returncode == 0 and "anvil" in anvil.stdout.lower(), anvil.stderr
    solc = subprocess.run(
        [str(chain.solc), "--version"], capture_output=True, text=True, check=False
    )
    assert solc.returncode == 0 and "0.8.26" in solc.stdout, solc.stdout + solc.stderr


def test_install_without_npm_says_what_to_install(tmp_path: Path) -> None:
    done = subprocess.run(
        [VOUCH, "toolchain", "install", "--dir", str(tmp_path / "t")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": str(Path(sys.executable).parent)},
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "npm is not on PATH" in done.stderr and "Node.js" in done.stderr, done.stderr
    assert not (tmp_path / "t").exists()  # nothing half-made
