"""Find the native toolchain (anvil, forge, solc) without looking anywhere near vouch's own files.

Each tool is looked up on its own, first hit wins:

1. explicit: ``VOUCH_ANVIL`` / ``VOUCH_FORGE`` / ``VOUCH_SOLC`` (a path to the program), or a
   toolchain dir ``VOUCH_TOOLCHAIN_DIR`` holding ``node_modules/`` (as ``npm ci`` of vouch's
   package.json leaves it);
2. ``PATH``;
3. the per-user toolchain ``~/.vouch/toolchain`` that ``vouch toolchain install`` makes;
4. a development checkout's ``node_modules`` (only when the caller passes one).

A missing tool raises ``ToolchainMissing`` naming the one command that installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import ChainError

INSTALL_HINT = (
    "install the pinned toolchain with `vouch toolchain install` (npm, into ~/.vouch/toolchain), "
    "put anvil/forge/solc on PATH, or point VOUCH_TOOLCHAIN_DIR at a folder holding its node_modules"
)

# where each tool sits inside a toolchain dir (vouch's package.json installed with npm)
_IN_DIR = {
    "anvil": ("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil", "node_modules/.bin/anvil"),
    "forge": ("node_modules/@foundry-rs/forge-linux-amd64/bin/forge", "node_modules/.bin/forge"),
    # solcjs behind a native-solc stand-in; it loads ../node_modules/solc
    "solc": ("scripts/solc-shim.js",),
}
_ENV = {"anvil": "VOUCH_ANVIL", "forge": "VOUCH_FORGE", "solc": "VOUCH_SOLC"}
_DIR_ENV = "VOUCH_TOOLCHAIN_DIR"


class ToolchainMissing(ChainError):
    """A tool vouch needs (anvil, forge, solc, OpenZeppelin's sources) was not found."""


def user_toolchain_dir() -> Path:
    """Where ``vouch toolchain install`` puts the toolchain: ``~/.vouch/toolchain``."""
    return Path.home() / ".vouch" / "toolchain"


@dataclass(frozen=True)
class Found:
    """One tool's path and where it was found ("VOUCH_ANVIL", "PATH", "~/.vouch/toolchain"...)."""

    path: Path
    origin: str


@dataclass(frozen=True)
class Toolchain:
    """The tools found (lazily checked: a missing one only fails when it is used).

    ``contracts`` is the folder of Solidity sources ``compile_contracts`` builds by default
    (vouch passes its shipped sources; None: the caller must give one).
    """

    found: Mapping[str, Found | None]
    dirs: tuple[tuple[Path, str], ...] = ()  # toolchain dirs in lookup order, with their origin
    contracts: Path | None = None
    tried: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def anvil(self) -> Path:
        """The anvil program."""
        return self._tool("anvil")

    @property
    def forge(self) -> Path:
        """The forge program."""
        return self._tool("forge")

    @property
    def solc(self) -> Path:
        """A native solc, or the solcjs shim that stands in for it."""
        return self._tool("solc")

    @property
    def node_modules(self) -> Path:
        """The node_modules holding OpenZeppelin's sources and solcjs (for compiling)."""
        for directory, _ in self.dirs:
            candidate = directory / "node_modules"
            if (candidate / "@openzeppelin/contracts/package.json").exists():
                return candidate
        raise ToolchainMissing(
            "OpenZeppelin's contracts (node_modules/@openzeppelin/contracts) were not found in "
            f"any toolchain dir ({self._dirs_text()}): {INSTALL_HINT}"
        )

    @property
    def root(self) -> Path:
        """The toolchain dir holding ``node_modules`` (the compiler's base path)."""
        return self.node_modules.parent

    def origin(self, tool: str) -> str | None:
        """Where ``tool`` was found, or None."""
        hit = self.found.get(tool)
        return hit.origin if hit else None

    def _tool(self, tool: str) -> Path:
        hit = self.found.get(tool)
        if hit is None:
            looked = "; ".join(self.tried.get(tool, ())) or "nowhere"
            raise ToolchainMissing(f"{tool} was not found (looked at: {looked}): {INSTALL_HINT}")
        if not hit.path.exists():
            raise ToolchainMissing(
                f"{tool}: {hit.origin} names {hit.path}, which does not exist; "
                f"fix or unset {hit.origin}"
            )
        return hit.path

    def _dirs_text(self) -> str:
        return ", ".join(str(d) for d, _ in self.dirs) or "none"


def find_toolchain(
    explicit: Path | None = None,
    *,
    tools: Mapping[str, Path | None] | None = None,
    dev_checkout: Path | None = None,
    contracts: Path | None = None,
    env: Mapping[str, str] | None = None,
    user_dir: Path | None = None,
) -> Toolchain:
    """Locate anvil, forge and solc; see the module docstring for the order.

    Args:
        explicit: a toolchain dir (settings ``toolchain_dir``); else ``$VOUCH_TOOLCHAIN_DIR``.
        tools: explicit programs by name (settings ``anvil``/``forge``/``solc``); else
            ``$VOUCH_ANVIL`` etc.
        dev_checkout: a vouch checkout whose ``node_modules`` is the last resort.
        contracts: the Solidity sources ``compile_contracts`` builds by default.
        env: the environment to read (default ``os.environ``).
        user_dir: the per-user toolchain dir (default ``~/.vouch/toolchain``).
    """
    environ = os.environ if env is None else env
    given = dict(tools or {})
    if explicit is None and environ.get(_DIR_ENV):
        explicit = Path(environ[_DIR_ENV])
    dirs: list[tuple[Path, str]] = []
    if explicit is not None:
        dirs.append((explicit.expanduser().resolve(), "toolchain_dir"))
    user = user_dir if user_dir is not None else user_toolchain_dir()
    dirs.append((user, "~/.vouch/toolchain"))
    if dev_checkout is not None:
        dirs.append((dev_checkout.resolve(), "checkout (dev)"))
    found: dict[str, Found | None] = {}
    tried: dict[str, tuple[str, ...]] = {}
    for tool, variable in _ENV.items():
        hit, looked = _locate(tool, given.get(tool), variable, environ, dirs, explicit)
        found[tool] = hit
        tried[tool] = looked
    return Toolchain(found=found, dirs=tuple(dirs), contracts=contracts, tried=tried)


def _locate(
    tool: str,
    given: Path | None,
    variable: str,
    environ: Mapping[str, str],
    dirs: list[tuple[Path, str]],
    explicit: Path | None,
) -> tuple[Found | None, tuple[str, ...]]:
    looked: list[str] = []
    if given is None and environ.get(variable):
        given = Path(environ[variable])
    if given is not None:
        # an explicit program that is missing is an error, not a reason to look elsewhere
        path = given.expanduser().resolve()
        return Found(path, variable), (f"{variable}={path}",)
    ordered = list(dirs)
    if explicit is not None:  # an explicit dir beats PATH; the others come after it
        hit = _in_dir(tool, ordered.pop(0)[0])
        looked.append(f"{_DIR_ENV}={explicit}")
        if hit is not None:
            return Found(hit, "toolchain_dir"), tuple(looked)
    on_path = shutil.which(tool, path=environ.get("PATH"))
    looked.append("PATH")
    if on_path and tool == "solc" and _is_solc_select(Path(on_path)):
        # an activated .venv puts solc-select's shim (slither's dependency) first; it
        # downloads compilers at run time, which fails offline: look further
        looked.append(f"skipped {on_path}: solc-select's shim downloads compilers")
    elif on_path:
        return Found(Path(on_path), "PATH"), tuple(looked)
    for directory, origin in ordered:
        looked.append(str(directory))
        hit = _in_dir(tool, directory)
        if hit is not None:
            return Found(hit, origin), tuple(looked)
    return None, tuple(looked)


def _is_solc_select(program: Path) -> bool:
    """Whether ``program`` is solc-select's ``solc`` entry point (a small Python script)."""
    try:
        with program.open("rb") as handle:
            return b"solc_select" in handle.read(4096)
    except OSError:
        return False


def _in_dir(tool: str, directory: Path) -> Path | None:
    for relative in _IN_DIR[tool]:
        candidate = directory / relative
        if candidate.exists():
            return candidate
    return None
