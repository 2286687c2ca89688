"""The CLI's help and errors read as a person expects: plain metavars, no class names."""

from __future__ import annotations

import json
import os
import re
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


def _vouch(
    tmp_path: Path, *args: str, env_vars: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")}
    return subprocess.run(
        [VOUCH, "--home", str(tmp_path / "home"), *args],
        capture_output=True,
        text=True,
        env={**env, **(env_vars or {}), "COLUMNS": "200"},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("args", [("runs", "list"), ("chain", "status"), ("audit",)])
def test_a_malformed_vouch_toml_is_an_error_naming_the_file_not_a_traceback(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """The whole class: any command that loads settings from a vouch.toml that is not TOML."""
    (tmp_path / "vouch.toml").write_text("nodes = [\n", encoding="utf-8")
    result = _vouch(tmp_path, *args)
    assert result.returncode in (1, 2), result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "Traceback" not in out and "TOMLDecodeError" not in out, out
    assert "vouch.toml is not valid TOML" in out, out


@pytest.mark.parametrize(
    ("toml", "env"),
    [(None, {"VOUCH_NODES": "abc"}), ("nodes = [\n", {})],
    ids=["bad variable", "malformed vouch.toml"],
)
def test_audit_json_prints_json_even_when_the_settings_cannot_load(
    tmp_path: Path, toml: str | None, env: dict[str, str]
) -> None:
    """`audit --json` is for machines: a cannot-audit answer is JSON on stdout, exit 2."""
    if toml is not None:
        (tmp_path / "vouch.toml").write_text(toml, encoding="utf-8")
    result = _vouch(tmp_path, "audit", "--json", env_vars=env)
    assert result.returncode == 2, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and "settings" in answer["cannot_audit"], answer


@pytest.mark.parametrize(
    "args",
    [("runs", "list"), ("runs", "submit", "goal"), ("secrets", "list"), ("log", "export", "x")],
)
def test_a_home_vouch_cannot_use_is_an_error_naming_the_path_not_a_traceback(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """The class: an OSError (a file where the state folder goes) is a message, exit 1."""
    home = tmp_path / "home"
    home.write_text("a file, not a folder", encoding="utf-8")
    result = _vouch(tmp_path, *args)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out and "Error:" not in out and "Errno" not in out, out
    assert result.stderr.startswith("error: ") and str(home) in out.replace("\n", ""), out


def _leaves(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name)


@pytest.mark.parametrize("path", list(_leaves(typer.main.get_command(app))), ids=" ".join)
def test_every_commands_help_gives_its_exit_codes(path: tuple[str, ...]) -> None:
    """0 and the failure codes, the command's own (audit: 0/1/2) or those main() gives."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    codes = re.search(r"Exit (codes: )?0 [^.]*?1 ", text)
    assert codes is not None, text
    if path in (("audit",), ("replay",)):  # the example: audit's help lacked its 2
        assert re.search(r"2 cannot (audit|replay)", text), text


# vouch/_runs.py belongs to another change in flight (the lease helper's); these lack help there
@pytest.mark.parametrize("path", list(_leaves(typer.main.get_command(app))), ids=" ".join)
def test_every_argument_and_option_has_help(path: tuple[str, ...]) -> None:
    """Options and arguments alike: a user reads what each one is."""
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    missing = [p.name for p in command.params if p.name != "help" and not getattr(p, "help", None)]
    assert missing == [], f"vouch {' '.join(path)}: no help for {missing}"
