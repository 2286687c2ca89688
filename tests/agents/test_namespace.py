"""vouch and the OpenAI Agents SDK in one environment (after ``scripts/rename_namespace.py``).

``openai-agents`` installs a top-level package named ``agents``; vouch installs its
packages as ``vouch.agents``, ``vouch.verifier`` and ``vouch.cre_adapters``. Until
the rename has run (it links the folders into ``vouch/``), this test is skipped.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
RENAMED = (REPO / "vouch" / "agents").is_symlink()

SIDE_BY_SIDE = """
import sys

import agents  # rename: keep (the OpenAI Agents SDK)
from agents import Agent as SdkAgent, Runner, function_tool  # rename: keep

import vouch.agents
from vouch.agents import Agent, Supervisor, run_sync, tool

assert agents.__name__ == "agents" and "site-packages" in agents.__file__, agents.__file__
assert vouch.agents.__file__.endswith("agents/__init__.py")
assert SdkAgent is not Agent and Runner and function_tool and Supervisor and run_sync and tool
# importing vouch.agents loads nothing else of vouch's (the namespace's __init__ is lazy)
others = [m for m in sys.modules if m.startswith("vouch.") and not m.startswith("vouch.agents")]
assert others == [], others
import vouch.cre_adapters, vouch.verifier  # the other two import under the namespace too
print("ok", agents.__file__, vouch.agents.__file__)
"""


@pytest.mark.skipif(not RENAMED, reason="run scripts/rename_namespace.py first (it enables this)")
def test_vouch_agents_and_openai_agents_import_side_by_side(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SIDE_BY_SIDE)],
        cwd=tmp_path,  # not the repo: its top-level agents/ folder would shadow the SDK
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")


def test_the_rename_is_idempotent_and_complete(tmp_path: Path) -> None:
    """On a copy of the python sources: one run rewrites every import, a second changes nothing."""
    import shutil

    copy = tmp_path / "repo"
    for name in ("agents", "verifier", "cre_adapters", "vouch", "tests", "examples", "scripts"):
        shutil.copytree(
            REPO / name, copy / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "Makefile"):
        shutil.copy(REPO / name, copy / name)
    script = [sys.executable, str(REPO / "scripts" / "rename_namespace.py")]
    first = subprocess.run([*script, str(copy)], capture_output=True, text=True, check=True)
    assert "change(s)" in first.stdout
    again = subprocess.run(
        [*script, "--check", str(copy)], capture_output=True, text=True, check=False
    )
    assert again.returncode == 0 and again.stdout.strip() == "0 change(s) needed"
    left = subprocess.run(
        [
            "grep",
            "-rnE",
            r"^\s*(from|import) (agents|verifier|cre_adapters)\b",
            "--include=*.py",
            str(copy / "vouch"),
            str(copy / "cre_adapters"),
            str(copy / "tests"),
            str(copy / "examples"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert [line for line in left.stdout.splitlines() if "rename: keep" not in line] == []
    assert (copy / "vouch" / "agents").is_symlink()
    assert 'include = ["vouch*"]' in (copy / "pyproject.toml").read_text()
