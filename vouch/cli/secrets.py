"""`vouch secrets`: each node's encrypted secret store (workflows reference secrets by name)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .._errors import VouchError
from ._common import app, console, settings

if TYPE_CHECKING:
    from .._stack import Stack

secrets_app = typer.Typer(
    help="Secrets for workflows, one encrypted store per node.", no_args_is_help=True
)
app.add_typer(secrets_app, name="secrets")


def _node_keys(stack: Stack) -> list[tuple[str, Path, bytes]]:
    from vouch.cre_adapters import load_key

    out = []
    for path in stack.node_keystores():
        password = stack.key_password(stack.node_key_id(path), path)
        out.append((path.stem, path, load_key(path, password)))
    return out


@secrets_app.command("set")
def secrets_set(
    name: Annotated[
        str, typer.Argument(help="The secret's name ({{secrets.NAME}} in a workflow).")
    ],
    from_env: Annotated[
        str | None, typer.Option(help="Read the value from this environment variable.")
    ] = None,
) -> None:
    """Encrypt NAME into every node's store (the value from stdin, a prompt, or --from-env).

    The value is never printed; nodes read their store on each execution (no restart).
    """
    import os

    from vouch.cre_adapters.workflow._secrets import set_secret

    if from_env is not None:
        value = os.environ.get(from_env)
        if value is None:
            raise VouchError(f"--from-env {from_env}: the variable is not set")
    elif sys.stdin.isatty():
        value = typer.prompt(f"value of {name}", hide_input=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    from .._stack import Stack

    stack = Stack(settings())
    nodes = _node_keys(stack)
    for _, path, key in nodes:
        set_secret(path, key, name, value)
    console.print(f"secret {name} set on {len(nodes)} nodes")


@secrets_app.command("list")
def secrets_list() -> None:
    """The secret names each node holds (never the values)."""
    from vouch.cre_adapters.workflow._secrets import secret_names

    # the keystores that exist (listing creates no keys, and needs no chain library)
    paths = settings().node_keystore_paths
    if not any(path.exists() for path in paths):
        raise VouchError(
            f"no node keys in {paths[0].parent}: `vouch don up` (or `vouch demo`) creates them"
        )
    for path in paths:
        console.print(f"{path.stem}: {', '.join(secret_names(path)) or '(none)'}")
