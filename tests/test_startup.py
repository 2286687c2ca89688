"""Start-up (issue 19): the CLI and a node process import only what they need.

Each check runs a fresh interpreter, so nothing this test process imported counts. The
CPU budget of a node's imports is measured in CPU seconds of that child (resource usage),
with room for a loaded machine; it fails on the old 2.8 CPU-s. Timings for the docs come
from scripts/bench/startup.py, not from here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# what no start-up path may pay for: the model client, the chain client, the web framework,
# and the parts of vouch that bring them
HEAVY = (
    "openai",
    "web3",
    "fastapi",
    "starlette",
    "eth_account",
    "py_ecc",
    "vouch.agents",
    "vouch.cre_adapters",
    "vouch.verifier",
    "vouch._settings",
    "vouch._stack",
)  # pydantic may load: typer itself uses it for validated options (0.1 CPU-s)
# every command group's help, and the root's
HELPS = [
    [],
    ["demo"],
    ["don"],
    ["node", "run"],
    ["audit"],
    ["chain"],
    ["log"],
    ["trades"],
    ["runs"],
    ["workflow"],
    ["toolchain"],
]


def _child(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nimport json; print(json.dumps(sorted(sys.modules)))"
    done = _child(code)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(h for h in HEAVY if h in modules)


def test_importing_the_cli_imports_no_model_chain_or_server_client() -> None:
    assert _heavy(_loaded_after("import vouch.cli")) == []


@pytest.mark.parametrize("args", HELPS, ids=lambda a: " ".join(a) or "vouch")
def test_help_imports_no_model_chain_or_server_client(args: list[str]) -> None:
    statement = (
        "from vouch.cli import app\n"
        f"try:\n    app({[*args, '--help']!r}, standalone_mode=False)\n"
        "except SystemExit:\n    pass"
    )
    assert _heavy(_loaded_after(statement)) == []


def test_an_error_of_a_package_never_imported_is_still_shown_as_a_message(
    tmp_path: Path,
) -> None:
    """main() finds vouch's error classes in sys.modules; a command that raises one loaded it."""
    env = {**os.environ, "VOUCH_HOME": str(tmp_path), "VOUCH_NODES": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "vouch", "chain", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr


def test_the_clis_copies_of_defaults_match_their_sources() -> None:
    """Kept in the CLI modules so that help imports nothing heavy; they must not drift."""
    from vouch._crosschain import DEFAULT_MESSAGE
    from vouch._demo import DEFAULT_GOAL
    from vouch.cli import demo, don
    from vouch.cre_adapters import FAULT_MODES

    assert demo.DEFAULT_GOAL == DEFAULT_GOAL
    assert demo.DEFAULT_MESSAGE == DEFAULT_MESSAGE
    assert tuple(don.FaultChoice) == FAULT_MODES


def test_signing_with_coincurve_matches_eth_account() -> None:
    """The signer dropped eth-account (1 CPU-s of imports) for coincurve: same bytes."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    from vouch.verifier import (
        Observation,
        keccak,
        recover_observation_signer,
        recover_report_signer,
        sign_observation,
        sign_report,
    )

    for i in range(1, 40):
        key = keccak(b"key %d" % i)
        address = Account.from_key(key).address
        digest = keccak(b"report %d" % i)
        reference = Account.unsafe_sign_hash(digest, key)
        ours = sign_report(digest, key)
        assert ours[:64] == reference.signature[:64] and ours[64] == reference.v - 27
        assert recover_report_signer(digest, ours) == address
        obs = Observation(request_id=f"r{i}", feed="ETH/USD", value=i, observed_at=i, node=address)
        signed = sign_observation(obs, key)
        expected = Account.sign_message(encode_defunct(primitive=obs.digest()), key).signature
        assert signed.signature == bytes(expected)
        assert recover_observation_signer(signed) == address


# the module a node process starts from, and what it must be able to do once imported
NODE_ENTRY = "vouch.cre_adapters.node"
NODE_CPU_LIMIT = 0.5  # CPU-s for a node's imports (issue 19); the old node took 2.8
NODE_NEVER = {"openai", "web3", "vouch.agents", "eth_account", "httpx", "fastapi", "typer"}


def test_a_node_process_imports_only_what_a_node_needs_within_half_a_cpu_second() -> None:
    """The node entry and its one router: no model, chain or HTTP-client library, <= 0.5 CPU-s.

    The CPU is the child's own (``time.process_time`` around the imports), the
    best of three runs, so another process's load does not count against it.
    """
    statement = (
        "import time\n_t = time.process_time()\n"
        f"import {NODE_ENTRY}\nimport vouch.cre_adapters._node_app\n"
        "print(time.process_time() - _t)"
    )
    best = float("inf")
    for _ in range(3):
        code = f"import sys\n{statement}\nimport json; print(json.dumps(sorted(sys.modules)))"
        done = _child(code)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        best = min(best, float(lines[-2]))
        loaded = set(json.loads(lines[-1]))
        assert not NODE_NEVER & loaded, sorted(NODE_NEVER & loaded)
    assert best <= NODE_CPU_LIMIT, f"a node's imports took {best:.2f} CPU-s (best of 3)"


# Commands that read no chain (issue 19: `--help` within 0.3 s, any command within 0.5 s before
# its own work). Measured as the child's whole CPU time, interpreter start included, best of 3,
# in a fresh home: their own work there is nothing (no runs, nothing to show but help). The
# issue's figures are for an idle machine (scripts/bench/startup.py, docs/benchmarks.md); CPU
# seconds grow under load (shared caches: `audit --help` 0.31 at one moment, 0.46 at another
# with five helpers' tests on 2 cores), so the budget gets LOADED_ROOM on top: it catches the
# regressions the issue was about (3.3 CPU-s for `--help`), and the modules assertion is the
# sharp check (one heavy import: web3 1.6 CPU-s, openai 1.2, vouch._stack 2.0, httpx 0.1).
LOADED_ROOM = 2.0
NO_CHAIN = [
    (["--help"], 0.3),
    (["audit", "--help"], 0.3),
    (["don", "up", "--help"], 0.3),
    (["workflow", "simulate", "--help"], 0.3),
    (["log", "--help"], 0.3),
    (["runs", "list"], 0.5),
]
# what a command that reads no chain must not load: chain, model and HTTP clients, the stack
NO_CHAIN_NEVER = {
    "openai",
    "web3",
    "eth_account",
    "py_ecc",
    "httpx",
    "fastapi",
    "starlette",
    "vouch._stack",
    "vouch._settlement",
    "vouch.cre_adapters.workflow",
}
_RUN_COMMAND = """import atexit, json, resource, sys
def _report():
    r = resource.getrusage(resource.RUSAGE_SELF)
    sys.stderr.write("\\n@@" + json.dumps([r.ru_utime + r.ru_stime, sorted(sys.modules)]))
atexit.register(_report)
sys.argv = ["vouch", *ARGS]
from vouch.cli import main
main()
"""


@pytest.mark.parametrize(("args", "limit"), NO_CHAIN, ids=[" ".join(a) for a, _ in NO_CHAIN])
def test_a_command_that_reads_no_chain_starts_within_its_cpu_budget(
    args: list[str], limit: float, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VOUCH_"))}
    env["VOUCH_HOME"] = str(tmp_path)
    code = _RUN_COMMAND.replace("ARGS", repr(args))
    best = float("inf")
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        cpu, modules = json.loads(done.stderr.rsplit("@@", 1)[1])
        loaded = NO_CHAIN_NEVER & set(modules)
        assert not loaded, f"vouch {' '.join(args)} imported {sorted(loaded)}"
        best = min(best, cpu)
    assert best <= limit * LOADED_ROOM, f"vouch {' '.join(args)} took {best:.2f} CPU-s (best of 3)"


def test_secrets_list_reads_the_stores_without_the_engine_or_the_chain(tmp_path: Path) -> None:
    """`vouch secrets list` names what each node's store holds: no stack, web3 or engine."""
    from vouch import load_settings

    keys = load_settings(home=tmp_path).don_dir / "keys"
    keys.mkdir(parents=True)
    for i in range(1, 5):  # listing reads names only: the keystores are not decrypted
        (keys / f"node-{i}.json").write_text("{}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VOUCH_"))}
    env["VOUCH_HOME"] = str(tmp_path)
    code = _RUN_COMMAND.replace("ARGS", repr(["secrets", "list"]))
    best = float("inf")
    never = (NO_CHAIN_NEVER - {"vouch.cre_adapters.workflow"}) | {
        "vouch.cre_adapters.workflow._engine",
        "vouch.cre_adapters._delivery",
    }
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "node-4: (none)" in done.stdout
        cpu, modules = json.loads(done.stderr.rsplit("@@", 1)[1])
        loaded = never & set(modules)
        assert not loaded, f"vouch secrets list imported {sorted(loaded)}"
        best = min(best, cpu)
    assert best <= 0.5 * LOADED_ROOM, f"vouch secrets list took {best:.2f} CPU-s (best of 3)"


def test_secrets_list_without_nodes_says_how_to_make_them(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VOUCH_"))}
    env["VOUCH_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "vouch", "secrets", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "vouch don up" in " ".join((done.stdout + done.stderr).split())  # rich wraps lines
    assert not (tmp_path / "don" / "keys").exists()  # listing created no keys
