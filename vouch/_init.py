"""`vouch init NAME --template T`: a ready workflow project from vouch/templates/T (package data)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from ._errors import VouchError

TEMPLATES = ("data-feed", "proof-of-reserve", "agent-settlement")
TEXT = (".py", ".sol", ".toml", ".md", ".json")


def short_name(name: str) -> str:
    """The workflow name (<= 10 of A-Z a-z 0-9 . _ -) derived from the project's name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "", name)[:10]
    if not cleaned:
        raise VouchError(f"project name {name!r}: use letters, digits, '.', '_' or '-'")
    return cleaned


def init_project(name: str, template: str, where: Path | None = None, settings: Any = None) -> Path:
    """Create project ``name`` (a folder; ``where`` overrides its path) from ``template``.

    ``settings`` (a ``VouchSettings``) says where the toolchain is (``VOUCH_TOOLCHAIN_DIR`` ...).

    Raises:
        VouchError: an unknown template, or a destination that exists and is not empty.
    """
    from vouch.cre_adapters.workflow._project import foundry_toml

    from ._resources import toolchain as find_toolchain

    if template not in TEMPLATES:
        raise VouchError(f"--template {template!r}: one of {', '.join(TEMPLATES)}")
    dest = (where or Path(name)).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise VouchError(f"{dest} exists and is not empty: choose another name or --dir")
    source = resources.files("vouch") / "templates" / template
    if not source.is_dir():
        raise VouchError(f"template {template} is missing from this vouch installation")
    short = short_name(Path(name).name)
    written: list[Path] = []
    try:
        _copy(source, dest, Path(name).name, short, written)
        (dest / "foundry.toml").write_text(foundry_toml(find_toolchain(settings)))
    except BaseException:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        raise
    return dest


def _copy(
    source: resources.abc.Traversable, dest: Path, name: str, short: str, written: list[Path]
) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name in ("__pycache__",) or item.name.endswith(".pyc"):
            continue
        target = dest / item.name
        if item.is_dir():
            _copy(item, target, name, short, written)
        elif item.name.endswith(TEXT):
            target.write_text(
                item.read_text().replace("__NAME__", name).replace("__SHORT__", short)
            )
            written.append(target)
        else:
            target.write_bytes(item.read_bytes())
            written.append(target)
