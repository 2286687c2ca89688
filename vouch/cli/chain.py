"""`vouch chain up|down|status`, `vouch deploy` and `vouch down`."""

from __future__ import annotations

from typing import Annotated

import typer

from .._stack import Stack
from ._common import app, console, settings

chain_app = typer.Typer(help="The local chain (anvil) vouch manages.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")


@chain_app.command("up")
def chain_up() -> None:
    """Start the managed anvil (from its saved state), or check the configured RPC."""
    chain = Stack(settings()).chain_up()
    console.print(f"chain {chain.chain_id} at {chain.url}")


@chain_app.command("down")
def chain_down() -> None:
    """Stop the managed anvil; its state is kept."""
    stopped = Stack(settings()).chain_down()
    console.print("anvil stopped" if stopped else "no managed anvil was running")


@chain_app.command("status")
def chain_status() -> None:
    """Show whether the chain answers."""
    chain = Stack(settings()).running_chain()
    if chain is None:
        console.print("chain: [red]down[/] (start it with `vouch chain up`)")
        raise typer.Exit(1)
    console.print(f"chain {chain.chain_id} at {chain.url}: [green]up[/]")


@app.command()
def deploy(
    force: Annotated[
        bool, typer.Option(help="Deploy anew even if a matching deployment is live.")
    ] = False,
) -> None:
    """Compile and deploy Forwarder, SettlementGate and test tokens; write the manifest."""
    cfg = settings()
    stack = Stack(cfg)
    chain = stack.chain_up()
    deployment, fresh = stack.deploy(chain, stack.artifacts(), force=force)
    for name, address in deployment.contracts.items():
        console.print(f"{name:16} {address}")
    console.print(
        f"{'deployed' if fresh else 'reused'}; manifest {cfg.deployment_path(chain.chain_id)}"
    )


@app.command()
def down() -> None:
    """Stop the DON and the managed chain (state is kept)."""
    stack = Stack(settings())
    stopped = stack.don_down()
    console.print(f"nodes stopped: {', '.join(stopped) or 'none running'}")
    console.print("anvil stopped" if stack.chain_down() else "no managed anvil was running")
