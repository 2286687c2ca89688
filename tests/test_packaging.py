"""Packaging: ranges in the pyprojects, exact versions only in constraints.txt."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^[A-Za-z0-9_.-]+")


def _requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {}).values()
    return [*project["dependencies"], *(r for group in extras for r in group)]


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in pairs}


def test_pyprojects_give_ranges_never_exact_pins() -> None:
    for pyproject in (ROOT / "pyproject.toml", ROOT / "verifier" / "pyproject.toml"):
        pinned = [r for r in _requirements(pyproject) if "==" in r]
        assert not pinned, f"{pyproject}: exact pins belong in constraints.txt: {pinned}"


def test_every_third_party_requirement_is_pinned_in_constraints() -> None:
    pins = _pins()
    for pyproject in (ROOT / "pyproject.toml", ROOT / "verifier" / "pyproject.toml"):
        for requirement in _requirements(pyproject):
            match = NAME.match(requirement)
            assert match is not None
            name = match.group(0).lower().replace("_", "-")
            if name.startswith("vouch"):
                continue  # the project's own extras
            assert name in pins, f"{requirement} ({pyproject.name}) has no pin in constraints.txt"


def test_the_server_and_fast_loop_are_extras_not_core() -> None:
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {NAME.match(r).group(0).lower() for r in core}  # type: ignore[union-attr]
    assert not names & {"fastapi", "uvicorn", "uvloop", "httptools"}, names
