"""`vouch toolchain install|show`: the pinned anvil, forge and solc, outside any checkout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from ._common import app, console, settings

toolchain_app = typer.Typer(
    help="The native toolchain (anvil, forge, solc): where it is, and installing it.",
    no_args_is_help=True,
)
app.add_typer(toolchain_app, name="toolchain")

_PINNED = ("package.json", "package-lock.json")


@toolchain_app.command("install")
def toolchain_install(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            metavar="PATH",
            help="Install here instead of ~/.vouch/toolchain (then set VOUCH_TOOLCHAIN_DIR to it).",
        ),
    ] = None,
) -> None:
    """Install the pinned anvil, forge, solcjs and OpenZeppelin with npm (`npm ci`, ~130 MB).

    The versions are the ones vouch is tested with (its package.json and package-lock.json).
    Exit codes: 0 installed, 1 npm failed or is missing.
    """
    from .._errors import MissingEnvironment
    from .._resources import toolchain_files_dir
    from ..cre_adapters.evm import user_toolchain_dir

    target = (directory or user_toolchain_dir()).expanduser().resolve()
    npm = shutil.which("npm")
    if npm is None:
        raise MissingEnvironment(
            "npm is not on PATH: install Node.js 18+ (it brings npm), then run "
            "`vouch toolchain install` again"
        )
    (target / "scripts").mkdir(parents=True, exist_ok=True)
    shipped = toolchain_files_dir()
    for name in _PINNED:
        shutil.copyfile(shipped / name, target / name)
    # the shim loads solcjs from ../node_modules, so it sits in scripts/ as in a checkout
    shutil.copyfile(shipped / "solc-shim.js", target / "scripts" / "solc-shim.js")
    (target / "scripts" / "solc-shim.js").chmod(0o755)
    console.print(f"installing the pinned toolchain into {target} (npm ci)", soft_wrap=True)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target, check=False
    )
    if done.returncode != 0:
        raise MissingEnvironment(
            f"`npm ci` failed in {target} (exit {done.returncode}); see npm's message above"
        )
    console.print(f"[green]installed[/] in {target}", soft_wrap=True)
    if directory is not None:
        console.print(f"use it with: export VOUCH_TOOLCHAIN_DIR={target}", soft_wrap=True)
    _show(target if directory is not None else None)


@toolchain_app.command("show")
def toolchain_show() -> None:
    """Print where anvil, forge and solc are found and which rule found them.

    Exit codes: 0 all found, 1 something is missing (the message says how to install it).
    """
    if not _show():
        raise typer.Exit(1)


def _show(directory: Path | None = None) -> bool:
    from .._resources import contracts_dir, shipped_artifacts, toolchain
    from ..cre_adapters.evm import Toolchain as _Toolchain
    from ..cre_adapters.evm import ToolchainMissing

    current = settings()
    if directory is not None:
        current = current.model_copy(update={"toolchain_dir": directory})
    chain: _Toolchain = toolchain(current)
    complete = True
    for tool in ("anvil", "forge", "solc"):
        try:
            path = getattr(chain, tool)
            console.print(f"{tool:6} {path}  [dim]({chain.origin(tool)})[/]", soft_wrap=True)
        except ToolchainMissing as exc:
            complete = False
            console.print(
                f"{tool:6} [red]missing[/]: {exc}", markup=True, highlight=False, soft_wrap=True
            )
    try:
        console.print(f"{'oz':6} {chain.node_modules / '@openzeppelin/contracts'}", soft_wrap=True)
    except ToolchainMissing as exc:
        complete = False
        console.print(f"{'oz':6} [red]missing[/]: {exc}", soft_wrap=True)
    console.print(f"contracts {contracts_dir()}", soft_wrap=True)
    built = "shipped, prebuilt" if shipped_artifacts() is not None else "compiled on first use"
    console.print(f"artifacts {built}", soft_wrap=True)
    return complete
