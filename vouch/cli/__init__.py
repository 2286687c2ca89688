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

from .._runs import make_runs_app
from . import (  # noqa: F401  (register the commands)
    audit,
    chain,
    demo,
    don,
    init,
    log,
    secrets,
    toolchain,
    trades,
    workflow,
)
from ._common import app, override, settings

app.add_typer(make_runs_app(settings), name="runs")

# every command's help ends with its exit codes: those main() gives, unless it documents its own
EXIT_CODES = (
    "Exit codes: 0 done; 1 an error (the message says what to fix); 2 bad usage, or a "
    "command that reads the chain found none running; 130 interrupted (Ctrl-C)."
)


def _document_exit_codes(group: typer.Typer) -> None:
    for command in group.registered_commands:
        text = command.help or (command.callback.__doc__ if command.callback else None) or ""
        if command.epilog is None and "Exit 0" not in text and "Exit codes" not in text:
            command.epilog = EXIT_CODES
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _document_exit_codes(sub.typer_instance)


_document_exit_codes(app)

# Start-up (issue 19): importing this package loads typer, rich and the command modules only;
# each command imports what it needs (web3, the DON, the agents) when it runs. The error
# classes main() reports are looked up in sys.modules: an error of a package that was never
# imported cannot have been raised.
_OURS = (
    ("vouch._errors", "VouchError"),
    ("vouch.cre_adapters._errors", "CreError"),
    ("vouch.verifier._errors", "VerifierError"),
    ("vouch.agents._errors", "AgentError"),
)


def _ours(exc: BaseException) -> bool:
    """Whether ``exc`` is one of vouch's errors (shown as a message, not a traceback)."""
    for module, name in _OURS:
        root = getattr(sys.modules.get(module), name, None)
        if isinstance(root, type) and isinstance(exc, root):
            return True
    return False


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
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        interrupted()
    except OSError as exc:  # a path vouch cannot use (a file where a folder goes, no permission)
        Console(stderr=True).print(Text.assemble(("error: ", "red"), _os_problem(exc)))
        sys.exit(1)
    except Exception as exc:  # vouch's errors; click usage errors (typer vendors its own click)
        if _ours(exc):
            Console(stderr=True).print(Text.assemble(("error: ", "red"), str(exc)))  # no markup
            code = getattr(exc, "exit_code", 1)
            sys.exit(code if isinstance(code, int) else 1)
        import click
        from typer.exceptions import TyperException

        if isinstance(exc, click.ClickException | TyperException) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise


def _os_problem(exc: OSError) -> str:
    """An operating-system error as a sentence: what, where, and what to check (no class name)."""
    what = exc.strerror or str(exc)
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    return (
        f"{where + ': ' if where else ''}{what}; check that path and its permissions "
        "(the state folder is --home or VOUCH_HOME)"
    )


def interrupted() -> NoReturn:
    """Ctrl-C: say so, print every registered hint, exit 130 at once (no traceback, no wait).

    Exits with ``os._exit``: threads still running (a DON round, a node poll)
    would otherwise be joined at shutdown, where a second Ctrl-C prints a
    traceback. Everything vouch writes is committed per transaction, so there
    is nothing left to flush but the two streams.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while we print: ignored
    # import nothing here: a Ctrl-C may have cut an import short (asyncio half-loaded), and a
    # hint exists only if a command loaded vouch._interrupt to register it
    hints = sys.modules.get("vouch._interrupt")
    try:
        err = Console(stderr=True)
        err.print("[yellow]interrupted[/]")
        for line in hints.interrupt_hints() if hints is not None else ():
            err.print(Text(f"  {line}"))  # no markup: a hint may hold brackets
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(130)


__all__ = ["app", "interrupted", "main"]
