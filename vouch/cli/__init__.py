"""The `vouch` command line: one module per command group.

``_common`` holds the root app, the console and the settings of an invocation;
each group module (``chain``, ``don``, ``workflow``, ``demo``, ``audit``,
``log``) registers its commands on import.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from vouch.agents import AgentError
from vouch.cre_adapters import CreError
from vouch.verifier import VerifierError

from .._errors import VouchError
from .._interrupt import interrupt_hints
from .._runs import make_runs_app
from . import audit, chain, demo, don, init, log, secrets, trades, workflow  # noqa: F401
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
    """Entry point: run the CLI, turning vouch errors into a message and exit code 1.

    An error with an ``exit_code`` (``ChainNotRunning``: 2) exits with it. Ctrl-C
    prints the hints registered with ``vouch._interrupt.interrupt_hint`` (which
    run paused, which command resumes it) and exits 130, never with a traceback.
    """
    try:
        code = app(standalone_mode=False)  # click returns typer.Exit codes in this mode
        if code == 130:  # typer turns a KeyboardInterrupt inside a command into Exit(130)
            interrupted()
        sys.exit(code if isinstance(code, int) else 0)
    except (VouchError, CreError, VerifierError, AgentError) as exc:
        Console(stderr=True).print(Text.assemble(("error: ", "red"), str(exc)))  # no markup
        code = getattr(exc, "exit_code", 1)
        sys.exit(code if isinstance(code, int) else 1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        interrupted()
    except Exception as exc:  # click usage errors (typer vendors its own click)
        import click
        from typer.exceptions import TyperException

        if isinstance(exc, click.ClickException | TyperException) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise


def interrupted() -> NoReturn:
    """Ctrl-C: say so, print every registered hint, exit 130 at once (no traceback, no wait).

    Exits with ``os._exit``: threads still running (a DON round, a node poll)
    would otherwise be joined at shutdown, where a second Ctrl-C prints a
    traceback. Everything vouch writes is committed per transaction, so there
    is nothing left to flush but the two streams.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while we print: ignored
    try:
        err = Console(stderr=True)
        err.print("[yellow]interrupted[/]")
        for line in interrupt_hints():
            err.print(Text(f"  {line}"))  # no markup: a hint may hold brackets
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(130)


__all__ = ["app", "interrupted", "main"]
