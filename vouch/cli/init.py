"""`vouch init`: a new workflow project from a template."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._init import TEMPLATES, init_project
from ._common import app, console, settings


@app.command("init")
def init(
    name: Annotated[str, typer.Argument(help="The project (a new folder of that name).")],
    template: Annotated[str, typer.Option(help=f"One of: {', '.join(TEMPLATES)}.")] = "data-feed",
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Create it here instead of ./NAME.")
    ] = None,
) -> None:
    """Create a workflow project: module, receiver contract, forge test, pytest test, vouch.toml."""
    dest = init_project(name, template, directory, settings())
    console.print(f"created {dest} from the {template} template")
    console.print(
        f"  cd {dest}\n  pytest tests\n  vouch workflow simulate workflow.py\n"
        "  vouch workflow run workflow.py && vouch audit",
        markup=False,
    )
