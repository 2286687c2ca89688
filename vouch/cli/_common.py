"""What every command module shares: the root app, the console, and the settings.

The global options (``--home``, ``--rpc-url``) and the overrides a command adds
(``don up --nodes``...) live in the root click context's ``obj``, so two CLI
invocations in one process (tests, ``CliRunner``) never see each other's flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer._click.globals import get_current_context

if TYPE_CHECKING:
    from .._settings import VouchSettings

app = typer.Typer(
    help="vouch: verifiable onchain agent workflows.", no_args_is_help=True, add_completion=False
)
console = Console()

SourcesOption = Annotated[
    Path | None,
    typer.Option(
        "--sources",
        help="DON sources file (.toml/.json/.yaml): each node's data source "
        "(set VOUCH_DON_SOURCES instead to keep it for every command that starts nodes).",
    ),
]


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
    from .._settings import load_settings  # pydantic and the agents' config: not for --help

    return load_settings(**_overrides())


def _plain_metavars() -> None:
    """Help that reads like a Unix tool's: `--json` alone, `--log PATH`, usage `NODE MODE`.

    typer 0.29's rich help shows every option's type in angle brackets (``--json <bool>``)
    and required arguments in braces (``{node}``); this restyles both in one place.
    """
    from typer.core import TyperArgument, TyperOption

    def option_type(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        shown = self.display_type(ctx)
        if "|" in shown:  # a choice: keep the choices readable
            return "[" + shown.strip("<>") + "]"
        name = shown.strip("<>")
        return {"str": "TEXT", "float": "NUMBER", "int": "INTEGER"}.get(name, name.upper())

    def argument_usage(self: TyperArgument) -> str:
        name = self.metavar or (self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def argument_name(self: TyperArgument) -> str:
        return self.metavar or (self.name or "").upper()

    def argument_type(self: TyperArgument, ctx: Any) -> str | None:
        shown = self.display_type(ctx)
        return "[" + shown.strip("<>") + "]" if "|" in shown else None  # the name says the rest

    TyperOption.display_type_rich = option_type  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign,assignment]
    TyperArgument._usage_display_name = argument_usage  # type: ignore[method-assign]
    TyperArgument._rich_display_name = argument_name  # type: ignore[method-assign]
    TyperArgument.display_name_raw = property(argument_name)  # type: ignore[method-assign,assignment]


_plain_metavars()
