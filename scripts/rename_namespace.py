"""Install ``agents``, ``verifier`` and ``cre_adapters`` as ``vouch.agents``, ``vouch.verifier``
and ``vouch.cre_adapters``, so vouch and the OpenAI Agents SDK (``openai-agents``, whose
top-level package is also named ``agents``) share one environment.

Usage::

    python scripts/rename_namespace.py [--check] [ROOT]

The top-level folders stay where they are. The script, idempotent (a second run
changes nothing; ``--check`` exits 1 if a run would change something):

1. links each folder into the ``vouch`` package (``vouch/agents -> ../agents``, a
   relative symlink): setuptools finds them as ``vouch.agents`` etc., for an editable
   install (the finder maps ``vouch`` to its folder; the links do the rest) and a wheel
   (the files are copied in under ``vouch/``); mypy sees them the same way;
2. installs only ``vouch*`` (``pyproject.toml``: ``packages.find``) and type-checks only
   ``vouch`` (``[tool.mypy] packages``);
3. rewrites every import of the three (``from agents import``, ``import verifier.x``,
   in code and in the programs tests write out as text), every module path in a string
   (``"agents._openai.X"``), every ``python -m verifier|cre_adapters`` a process is
   spawned with (``"-m", "cre_adapters.node"``) and those lines in the Makefile, the
   shell scripts and the docs;
4. makes ``vouch/__init__.py`` load its exports on first use (PEP 562), so importing
   ``vouch.agents`` loads nothing else of vouch's (the packages stay independent).

What it leaves alone: lines marked ``# rename: keep`` (an import of the SDK's
``agents``, say), ``verifier/pyproject.toml`` (the verifier's standalone
distribution keeps the top-level name ``verifier``), and ``python -m verifier`` or
``runpy.run_module("verifier")`` written for that standalone install.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

MOVED = ("agents", "verifier", "cre_adapters")
_NAMES = "|".join(MOVED)
SKIP_DIRS = {".git", ".venv", "node_modules", ".vouch", "__pycache__", ".mypy_cache", ".ruff_cache"}
SKIP_FILES = {"scripts/rename_namespace.py", "verifier/pyproject.toml"}

# `from agents import x`, `from verifier._log import y` (not `from vouch.agents`, not relative)
_FROM = re.compile(rf"^(\s*)from ({_NAMES})((?:\.\w+)*) import ", re.M)
# `import agents` / `import verifier._cli as cli` (a bare import keeps its name as an alias)
_IMPORT = re.compile(rf"^(\s*)import ({_NAMES})((?:\.\w+)*)( as \w+)?[ \t]*$", re.M)
# a module path in a string: "agents._openai.X", 'cre_adapters.node:main'
_QUOTED = re.compile(rf"""(["'])({_NAMES})((?:\.\w+)+|:)""")
# spawning a module: "-m", "cre_adapters.node"  /  -m verifier (shell, Makefile, docs)
_SPAWN = re.compile(rf"""(["']-m["'],\s*["'])({_NAMES})\b""")
_SHELL = re.compile(rf"(python3?\s+-m\s+)({_NAMES})\b")


KEEP = "rename: keep"
"""A line carrying this comment is left as it is (an import of another package named alike)."""


def _per_line(rewrite: Callable[[str], str]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        return "".join(
            line if KEEP in line else rewrite(line) for line in text.splitlines(keepends=True)
        )

    return apply


def _rewrite_python(text: str) -> str:
    text = _FROM.sub(lambda m: f"{m[1]}from vouch.{m[2]}{m[3]} import ", text)

    def bare(m: re.Match[str]) -> str:
        alias = m[4] or (f" as {m[2]}" if not m[3] else "")
        return f"{m[1]}import vouch.{m[2]}{m[3]}{alias}"

    text = _IMPORT.sub(bare, text)
    text = _QUOTED.sub(lambda m: f"{m[1]}vouch.{m[2]}{m[3]}", text)
    return _SPAWN.sub(lambda m: f"{m[1]}vouch.{m[2]}", text)


rewrite_python = _per_line(_rewrite_python)
"""``text`` with every import and module path of the three under ``vouch.``."""


def _rewrite_text(text: str) -> str:
    text = _SHELL.sub(lambda m: f"{m[1]}vouch.{m[2]}", text)
    text = _FROM.sub(lambda m: f"{m[1]}from vouch.{m[2]}{m[3]} import ", text)
    return _IMPORT.sub(lambda m: f"{m[1]}import vouch.{m[2]}{m[3]}{m[4] or ''}", text)


rewrite_text = _per_line(_rewrite_text)
"""Makefile, shell and docs: ``python -m verifier`` and import lines in code blocks."""


def rewrite_pyproject(text: str) -> str:
    """Install and type-check ``vouch*`` only (the folders come in through the links)."""
    text = re.sub(
        r"(\[tool\.setuptools\.packages\.find\]\s*\ninclude\s*=\s*)\[[^\]]*\]",
        r'\1["vouch*"]',
        text,
    )
    return re.sub(
        r"(\[tool\.mypy\][^\[]*?\npackages\s*=\s*)\[[^\]]*\]", r'\1["vouch"]', text, flags=re.S
    )


_EXPORT = re.compile(r"^from (\.\w+) import (\([^)]*\)|[^\n]+)\n", re.M)


def lazy_init(text: str) -> str:
    """``vouch/__init__.py`` with its ``from .x import a, b`` exports loaded on first use."""
    if "def __getattr__(" in text:
        return text
    lazy: dict[str, str] = {}
    for module, names in _EXPORT.findall(text):
        for name in names.strip("()").replace("\n", " ").split(","):
            name = name.strip()  # noqa: PLW2901
            if name:
                lazy[name.split(" as ")[-1].strip()] = f"{module}:{name.split(' as ')[0].strip()}"
    if not lazy:
        return text
    typed = "\n".join(
        f"    from {where.split(':')[0]} import {where.split(':')[1]} as {name}"
        for name, where in sorted(lazy.items(), key=lambda kv: (kv[1].split(":")[0], kv[0]))
    )
    table = "\n".join(f'    "{name}": "{where}",' for name, where in sorted(lazy.items()))
    body = _EXPORT.sub("", text)
    head, sep, rest = body.partition("__all__")
    block = (
        "import importlib\n"
        "from typing import TYPE_CHECKING, Any\n\n"
        "if TYPE_CHECKING:\n"
        f"{typed}\n\n"
        "# loaded on first use, so importing vouch.agents (or vouch.verifier) loads nothing\n"
        "# else of vouch's\n"
        f"_LAZY = {{\n{table}\n}}\n\n\n"
        "def __getattr__(name: str) -> Any:\n"
        "    where = _LAZY.get(name)\n"
        "    if where is None:\n"
        '        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")\n'
        '    module, _, attr = where.partition(":")\n'
        "    value = getattr(importlib.import_module(module, __name__), attr)\n"
        "    globals()[name] = value\n"
        "    return value\n\n\n"
    )
    return head.rstrip() + "\n\n" + block + sep + rest


def link(root: Path, changed: list[str], check: bool) -> None:
    for name in MOVED:
        target = root / "vouch" / name
        if target.is_symlink() and os.readlink(target) == f"../{name}":
            continue
        if target.exists() or target.is_symlink():
            raise SystemExit(f"{target} exists and is not a link to ../{name}; move it first")
        changed.append(f"vouch/{name} -> ../{name}")
        if not check:
            target.symlink_to(Path("..") / name, target_is_directory=True)


def files(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [
            d
            for d in dirnames
            if d not in SKIP_DIRS and not (here / d).is_symlink()  # vouch/agents is a link
        ]
        found += [here / f for f in filenames]
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=Path(__file__).resolve().parents[1], type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if needed")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    changed: list[str] = []
    link(root, changed, args.check)
    for path in files(root):
        rel = path.relative_to(root).as_posix()
        if rel in SKIP_FILES:
            continue
        if path.suffix == ".py":
            rewrite = rewrite_python
        elif rel == "pyproject.toml":
            rewrite = rewrite_pyproject
        elif path.name == "Makefile" or path.suffix in (".sh", ".md", ".yaml", ".yml", ".cfg"):
            rewrite = rewrite_text
        else:
            continue
        text = path.read_text(encoding="utf-8")
        new = rewrite(text)
        if rel == "vouch/__init__.py":
            new = lazy_init(new)
        if new != text:
            changed.append(rel)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for line in changed:
        print(("would change " if args.check else "changed ") + line)
    print(f"{len(changed)} change(s)" + (" needed" if args.check else ""))
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
