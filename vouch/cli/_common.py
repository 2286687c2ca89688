"""What every command module shares: the root app, the console, and the settings.

The global options (``--home``, ``--rpc-url``) and the overrides a command adds
(``don up --nodes``...) live in the root click context's ``obj``, so two CLI
invocations in one process (tests, ``CliRunner``) never see each other's flags.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from typer._click.globals import get_current_context

from .._settings import VouchSettings, load_settings

app = typer.Typer(
    help="vouch: verifiable onchain agent workflows.", no_args_is_help=True, add_completion=False
)
console = Console()


def _overrides() -> dict[str, Any]:
    root = get_current_context().find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    overrides: dict[str, Any] = root.obj
    return overrides


def override(**values: Any) -> None:
    """Add settings overrides from a command's own flags (``None`` leaves a setting as it is)."""
    _overrides().update(values)


def settings() -> VouchSettings:
    """The settings of this invocation: env and vouch.toml, then the CLI's flags on top."""
    return load_settings(**_overrides())
