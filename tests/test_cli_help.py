"""The CLI's help and errors read as a person expects: plain metavars, no class names."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from vouch.cli import app

VOUCH = str(Path(sys.executable).with_name("vouch"))


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(group, "commands"):
        for name, command in group.commands.items():  # typer vendors its own click
            yield from _commands(command, (*path, name))


ALL = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "vouch")
def test_help_shows_plain_metavars(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "<str>" not in result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage


def test_a_bad_flag_is_named_as_a_flag_without_a_class_name(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")}
    result = subprocess.run(
        [VOUCH, "--home", str(tmp_path), "don", "up", "--nodes", "3"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid settings: --nodes"), result.stderr
    assert "SettingsError" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "chain").exists()  # nothing started, nothing written


def test_a_bad_variable_is_named_as_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")}
    result = subprocess.run(
        [VOUCH, "--home", str(tmp_path), "chain", "status"],
        capture_output=True,
        text=True,
        env={**env, "VOUCH_F": "5", "COLUMNS": "200"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "the environment variable VOUCH_F: 4 nodes cannot tolerate f=5" in result.stderr
