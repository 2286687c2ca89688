"""`vouch demo settlement|refusal|byzantine|cross-chain`."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import app, console, override, settings

# the demos' defaults, here so `vouch demo --help` imports no demo (tests/test_startup.py
# checks they equal vouch._demo.DEFAULT_GOAL and vouch._crosschain.DEFAULT_MESSAGE)
DEFAULT_GOAL = "Sell 1.5 WETH for USDC between 2,500 and 3,500 USDC per WETH within 10 minutes"
DEFAULT_MESSAGE = "hello from chain A, attested by the DON"

demo_app = typer.Typer(help="End-to-end demos.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@demo_app.command("settlement")
def demo_settlement(
    goal: Annotated[str, typer.Option(help="What the agent is asked to do.")] = DEFAULT_GOAL,
    approve: Annotated[
        bool,
        typer.Option(
            help="Play the approver: sign and record the approval, then settle. "
            "--no-approve leaves the run paused for `vouch runs approve|reject`."
        ),
    ] = True,
) -> None:
    """A verified settlement end to end on a local chain and DON, through a human approval."""
    from .._demo import run_settlement_demo

    outcome = run_settlement_demo(settings(), console, goal, approve)
    if outcome is not None and outcome.status != "settled":
        raise typer.Exit(1)


@demo_app.command("refusal")
def demo_refusal() -> None:
    """A trade the gate refuses onchain (price outside its bounds), refunded after its deadline."""
    from .._demo import run_refusal_demo

    run_refusal_demo(settings(), console)


@demo_app.command("byzantine")
def demo_byzantine() -> None:
    """7 nodes, f=2: one lies, one equivocates, one is slow, it settles; then f+1: refused, refunded."""
    from .._byzantine import run_byzantine_demo

    override(nodes=7, f=2)
    run_byzantine_demo(settings(), console)


@demo_app.command("cross-chain")
def demo_cross_chain(
    message: Annotated[str, typer.Option(help="What chain A sends to chain B's receiver.")] = (
        DEFAULT_MESSAGE
    ),
    amount: Annotated[
        int, typer.Option(min=1, max=100, help="Whole test tokens sent with the message.")
    ] = 2,
) -> None:
    """A message from chain A executed on a second local chain once the DON attests it; audited."""
    from .._crosschain import run_cross_chain_demo

    run_cross_chain_demo(settings(), console, message, amount)
