"""An auditor's machine: the `vouch-verifier` distribution installed alone audits a real demo log.

`pip install --no-deps --target` builds and installs ./verifier (its own
pyproject) into an empty directory; `python -m verifier` then runs from that
directory with only third-party packages beside it (the venv's site-packages,
added without its .pth files, so vouch's editable install is not on the path)
and agents, cre_adapters and vouch unimportable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ..test_verifier import STANDALONE
from .test_cli_e2e import demo, tampered, vouch

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
SHARED_FIXTURES = [demo]  # the e2e module's `vouch demo settlement` home, run once for this module

# the blocker of the standalone unit test, then `python -m verifier ARGS` from the target alone
RUNNER = (
    STANDALONE.split("sys.path.insert(0, sys.argv[1])")[0]
    + """
target, site_packages = sys.argv[1], sys.argv[2]
sys.path[:] = [target, *[p for p in sys.path if "site-packages" not in p], site_packages]
import runpy
import verifier
assert verifier.__file__.startswith(target), verifier.__file__
sys.argv = ["python -m verifier", *sys.argv[3:]]
runpy.run_module("verifier", run_name="__main__", alter_sys=True)
"""
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """./verifier built and installed on its own (from a copy: the build writes into its tree)."""
    root = tmp_path_factory.mktemp("auditor")
    source = root / "src"
    shutil.copytree(
        REPO / "verifier",
        source,
        ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"),
    )
    target = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
    done = subprocess.run(
        [*pip, str(target), str(source)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def auditor(target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site_packages = sysconfig.get_paths()["purelib"]
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(target), site_packages, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def manifest_of(home: Path) -> Path:
    return next((home / "deployments").glob("*.json"))


def test_the_distribution_installs_only_the_verifier_package(installed: Path) -> None:
    names = sorted(p.name for p in installed.iterdir() if p.name != "bin")
    assert names == ["verifier", "vouch_verifier-0.1.0.dist-info"]
    package = installed / "verifier"
    assert (package / "py.typed").exists() and (package / "__main__.py").exists()
    assert not (package / "pyproject.toml").exists()
    metadata = (installed / "vouch_verifier-0.1.0.dist-info" / "METADATA").read_text()
    requires = sorted(
        line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist")
    )
    assert "web3<8,>=7.16.0" in requires or "web3>=7.16.0,<8" in requires
    assert not any(r.startswith(("typer", "rich", "httpx", "fastapi", "openai")) for r in requires)


def test_the_installed_verifier_passes_the_honest_demo_log_like_vouch_audit(
    installed: Path, demo
) -> None:
    environ, home, _ = demo
    log, manifest = str(home / "attestations.db"), str(manifest_of(home))
    result = auditor(installed, "audit", log, "--manifest", manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: all" in result.stdout and "against: chain 31337 at http://" in result.stdout
    assert f"pins (manifest {manifest})" in result.stdout
    alone = auditor(installed, "audit", log, "--manifest", manifest, "--json")
    assert alone.returncode == 0, alone.stderr
    with_vouch = vouch(environ, "audit", "--json")
    assert with_vouch.returncode == 0, with_vouch.stdout
    # the same checks, with the same verdicts, as the vouch CLI that knows the deployment
    # (only where the pins came from differs: a manifest here, the home's manifest there)
    ours, theirs = json.loads(alone.stdout), json.loads(with_vouch.stdout)
    assert ours["results"] == theirs["results"] and ours["ok"] and theirs["ok"]
    assert ours["context"]["pins"]["forwarder"] == theirs["context"]["pins"]["forwarder"]
    checks = {r["check"] for r in json.loads(alone.stdout)["results"]}
    assert {"transaction", "decision onchain", "anchored"} <= checks


def test_addresses_given_as_options_instead_of_a_manifest(installed: Path, demo) -> None:
    _, home, _ = demo
    doc = json.loads(manifest_of(home).read_text())
    contracts = doc["contracts"]
    result = auditor(
        installed,
        "audit",
        str(home / "attestations.db"),
        "--rpc-url",
        doc["rpc_url"],
        "--forwarder",
        contracts["Forwarder"],
        "--gate",
        contracts["SettlementGate"],
        "--json",
    )
    # pins are all or nothing: the flags it still needs are named
    assert result.returncode == 2, result.stdout + result.stderr
    assert "incomplete pins: also pass --chain-id --anchor" in result.stderr
    pinned = auditor(
        installed,
        "audit",
        str(home / "attestations.db"),
        *("--rpc-url", doc["rpc_url"], "--chain-id", str(doc["chain_id"])),
        *("--forwarder", contracts["Forwarder"], "--gate", contracts["SettlementGate"]),
        *("--anchor", contracts["AttestationAnchor"], "--json"),
    )
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    checks = {r["check"] for r in json.loads(pinned.stdout)["results"]}
    assert {"transaction", "decision onchain", "anchored", "pinned deployment"} <= checks


def test_the_installed_verifier_names_the_tampered_entry(
    installed: Path, demo, tmp_path: Path
) -> None:
    _, home, _ = demo
    sql = "UPDATE entries SET payload = replace(payload, 'settled', 'settleD') WHERE seq = 6"
    copy = tampered(home, tmp_path, sql)
    result = auditor(installed, "audit", str(copy), "--manifest", str(manifest_of(home)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "first failing entries in log order: #6" in result.stdout
    assert any(line.startswith("#6\t") and "FAIL" in line for line in result.stdout.splitlines())


def test_the_installed_verifier_cannot_audit_an_unreadable_log_or_a_dead_chain(
    installed: Path, demo, tmp_path: Path
) -> None:
    _, home, _ = demo
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an sqlite database, just bytes " * 100)
    result = auditor(installed, "audit", str(garbage), "--manifest", str(manifest_of(home)))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot audit" in result.stderr and "garbage.db is not a readable attestation log" in (
        result.stderr
    )
    missing = auditor(installed, "audit", str(tmp_path / "missing.db"))
    assert missing.returncode == 2 and "no attestation log at" in missing.stderr
    dead = auditor(
        installed,
        "audit",
        str(home / "attestations.db"),
        *("--manifest", str(manifest_of(home)), "--rpc-url", "http://127.0.0.1:9"),
    )
    assert dead.returncode == 2 and "no chain answers at http://127.0.0.1:9" in dead.stderr


def test_the_installed_verifier_replays_exports_and_imports(
    installed: Path, demo, tmp_path: Path
) -> None:
    _, home, _ = demo
    log = str(home / "attestations.db")
    out = tmp_path / "log.jsonl"
    assert auditor(installed, "export", log, str(out)).returncode == 0
    copy = tmp_path / "copy.db"
    imported = auditor(installed, "import", str(out), "--into", str(copy))
    assert imported.returncode == 0, imported.stderr
    again = auditor(installed, "audit", str(copy), "--manifest", str(manifest_of(home)))
    assert again.returncode == 0, again.stdout + again.stderr
    with open(out, encoding="utf-8") as lines:
        execution = next(
            e["execution_id"] for e in map(json.loads, lines) if e["kind"] == "submission"
        )
    replayed = auditor(installed, "replay", log, execution[:12])
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "recomputes exactly" in replayed.stdout
