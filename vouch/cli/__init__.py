"""The `vouch` command line: one module per command group.

``_common`` holds the root app, the console and the settings of an invocation;
each group module (``chain``, ``don``, ``workflow``, ``demo``, ``audit``,
``log``) registers its commands on import.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from agents import AgentError
from cre_adapters import CreError
from verifier import VerifierError

from .._errors import VouchError
from .._runs import make_runs_app
from . import audit, chain, demo, don, log, workflow  # noqa: F401  (register the commands)
from ._common import app, override, settings

app.add_typer(make_runs_app(settings), name="runs")


@app.callback()
def _options(
    home: Annotated[Path | None, typer.Option(help="State folder (env VOUCH_HOME).")] = None,
    rpc_url: Annotated[
        str | None,
        typer.Option(help="Use this EVM RPC instead of a managed anvil (env VOUCH_RPC_URL)."),
    ] = None,
) -> None:
    override(home=home, rpc_url=rpc_url)


def main() -> None:
    """Entry point: run the CLI, turning vouch errors into a message and exit code 1."""
    try:
        code = app(standalone_mode=False)  # click returns typer.Exit codes in this mode
        sys.exit(code if isinstance(code, int) else 0)
    except (VouchError, CreError, VerifierError, AgentError) as exc:
        Console(stderr=True).print(Text.assemble(("error: ", "red"), str(exc)))  # no markup
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # click usage errors (typer vendors its own click)
        import click
        from typer.exceptions import TyperException

        if isinstance(exc, click.ClickException | TyperException) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise


__all__ = ["app", "main"]
