"""`vouch chain up|down|status`, `vouch deploy` and `vouch down`.

Only `chain up` (and the commands that run things: `don up`, demos, workflows)
starts a chain. `deploy` needs a running one and exits 2 naming `vouch chain up`
if there is none, so it never leaves an anvil running behind the user's back.
`vouch down` anchors the home's unanchored log entries before stopping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from ._common import app, console, settings

if TYPE_CHECKING:
    from .._stack import Stack

chain_app = typer.Typer(help="The local chain (anvil) vouch manages.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")


@chain_app.command("up")
def chain_up() -> None:
    """Start the managed anvil (from its saved state), or check the configured RPC."""
    from .._stack import Stack

    chain = Stack(settings()).chain_up()
    console.print(f"chain {chain.chain_id} at {chain.url}")


@chain_app.command("down")
def chain_down() -> None:
    """Stop the managed anvil; its state is kept."""
    from .._stack import Stack

    stopped = Stack(settings()).chain_down()
    console.print("anvil stopped" if stopped else "no managed anvil was running")


@chain_app.command("status")
def chain_status() -> None:
    """Show whether the chain answers."""
    from .._stack import Stack

    chain = Stack(settings()).running_chain()
    if chain is None:
        console.print("chain: [red]down[/] (start it with `vouch chain up`)")
        raise typer.Exit(2)
    console.print(f"chain {chain.chain_id} at {chain.url}: [green]up[/]")


@app.command()
def deploy(
    force: Annotated[
        bool, typer.Option(help="Deploy anew even if a matching deployment is live.")
    ] = False,
) -> None:
    """Compile and deploy Forwarder, SettlementGate and test tokens; write the manifest.

    Needs the running chain (`vouch chain up`); it never starts one.
    """
    from .._stack import Stack

    cfg = settings()
    stack = Stack(cfg)
    chain = stack.require_chain()
    deployment, fresh = stack.deploy(chain, stack.artifacts(), force=force)
    for name, address in deployment.contracts.items():
        console.print(f"{name:16} {address}")
    console.print(
        f"{'deployed' if fresh else 'reused'}; manifest {cfg.deployment_path(chain.chain_id)}"
    )


@app.command()
def down() -> None:
    """Anchor the log's unanchored entries, then stop the DON and the managed chain (state is kept).

    Exit 1 if the entries could not be anchored (everything is stopped anyway).
    """
    from .._stack import Stack

    cfg = settings()
    stack = Stack(cfg)
    failed = _anchor_before_down(stack)
    stopped = stack.don_down()
    console.print(f"nodes stopped: {', '.join(stopped) or 'none running'}")
    console.print("anvil stopped" if stack.chain_down() else "no managed anvil was running")
    if failed:
        raise typer.Exit(1)


def _anchor_before_down(stack: Stack) -> bool:
    """Anchor what the home's log has unanchored, when a chain runs with an anchor contract.

    Returns True when anchoring was needed and failed.
    """
    from vouch.verifier import AttestationLog

    from .._anchor import anchor_everything, live_manifest

    chain = stack.running_chain()
    log_path = stack.settings.log_path
    if chain is None or not log_path.exists():
        return False
    try:
        deployment = live_manifest(stack.settings, chain)
        if deployment is None:
            return False
        artifacts = stack.artifacts()
        result = anchor_everything(
            AttestationLog(log_path), stack.writer(chain, artifacts), artifacts, deployment
        )
    except Exception as exc:  # noqa: BLE001 - whatever it is, `down` still stops everything
        Console(stderr=True).print(
            Text.assemble(
                ("could not anchor the log before stopping: ", "red"),
                f"{exc}; its newest entries stay unanchored until `vouch chain up` "
                "and `vouch log anchor`",
            )
        )
        return True
    if result is None:
        console.print("log: every entry already anchored")
    else:
        console.print(
            f"log: anchored #{result.from_seq}..#{result.to_seq} as anchor {result.index}"
        )
    return False
