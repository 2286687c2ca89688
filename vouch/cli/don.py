"""`vouch don up|down|status|fault` and `vouch node run`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ._common import SourcesOption, app, console, override, settings

don_app = typer.Typer(help="The local oracle network (DON).", no_args_is_help=True)
node_app = typer.Typer(help="One oracle node (started by `vouch don up`).", no_args_is_help=True)
app.add_typer(don_app, name="don")
app.add_typer(node_app, name="node")


@don_app.command("up")
def don_up(
    nodes: Annotated[
        int | None, typer.Option(help="Number of nodes n (env VOUCH_NODES; 4..31).")
    ] = None,
    f: Annotated[
        int | None, typer.Option("--f", help="Faulty nodes tolerated (n >= 3f+1; env VOUCH_F).")
    ] = None,
    sources: SourcesOption = None,
) -> None:
    """Start the oracle nodes for the current deployment (redeploys if n or f changed).

    n, f and the sources persist: later commands use this DON as it is, and
    refuse (naming this command) when they are asked for another n or f.
    Nodes not running are started, except those a `down` fault keeps down.
    """
    from .._stack import Stack

    override(nodes=nodes, f=f, don_sources=sources)
    stack = Stack(settings())
    stack.replace_don = True
    chain = stack.chain_up()
    deployment, _ = stack.deploy(chain, stack.artifacts())
    don, started = stack.don_up(deployment)
    console.print(
        f"{len(don.nodes)} nodes {'started' if started else 'already running'} (f={don.f})"
    )
    faults = stack.supervisor(don).runtime_faults()
    for node in don.nodes:
        fault = faults.get(node.name, node.fault)
        if node.source.kind != "mock-price" or fault.mode != "none":
            console.print(f"  {node.name}: source {node.source.kind}, fault {fault.mode}")


@don_app.command("init")
def don_init(
    hosts: Annotated[
        str,
        typer.Option(
            help="Comma-separated host (IP or name) of each node, one entry per node: "
            "h1,h2,h3,h4. A host named twice runs two nodes."
        ),
    ],
    out: Annotated[Path, typer.Option(help="New folder for the bundles (one per host).")],
    forwarder: Annotated[
        str, typer.Option(help="The forwarder the DON's reports go to (checksum address).")
    ],
    chain_id: Annotated[int, typer.Option(help="The forwarder's chain id.")] = 31337,
    f: Annotated[
        int | None, typer.Option("--f", help="Faulty nodes tolerated (default (n-1)//3).")
    ] = None,
    port: Annotated[int, typer.Option(help="The port every node listens on (HTTPS).")] = 8443,
    owner_host: Annotated[
        list[str] | None,
        typer.Option(help="Host name/IP of the owner's machine for its certificate (repeat)."),
    ] = None,
    scrypt_n: Annotated[
        int | None,
        typer.Option(help="Keystore scrypt cost; lower only for throwaway keys.", hidden=True),
    ] = None,
) -> None:
    """Make a DON of nodes on separate hosts: keys, pinned TLS certificates, one bundle per host.

    Copy OUT/host-H to host H and run there `python -m vouch.cre_adapters.node --don
    don.json --node node-i` (or `vouch node run`); the owner keeps OUT/owner (its TLS
    key and the admin token). Nodes and coordinator authenticate each other by mutual
    TLS against the certificates pinned in don.json.
    """
    from vouch.cre_adapters import init_bundles

    made = init_bundles(
        out,
        [h.strip() for h in hosts.split(",") if h.strip()],
        f=f,
        chain_id=chain_id,
        forwarder=forwarder,
        port=port,
        owner_hosts=owner_host or [],
        scrypt_n=scrypt_n,
    )
    console.print(f"DON of {len(made.don.nodes)} nodes (f={made.don.f}), mutual TLS:")
    for node in made.don.nodes:
        console.print(f"  {node.name} {node.address} {node.url}")
    for host, folder in made.hosts.items():
        console.print(f"  bundle for {host}: {folder}")
    console.print(f"  owner (coordinator, admin): {made.owner}")
    console.print("configure the forwarder with these signers (in this order) and f before use")


@don_app.command("down")
def don_down() -> None:
    """Stop the oracle nodes."""
    from .._stack import Stack

    stopped = Stack(settings()).don_down()
    console.print(f"stopped {', '.join(stopped)}" if stopped else "no nodes were running")


@don_app.command("status")
def don_status() -> None:
    """Show every node: key, URL, health, last round."""
    from vouch.cre_adapters import DonConfig

    from .._stack import Stack

    stack = Stack(settings())
    if not stack.don_file.exists():
        console.print("no DON configured yet: run `vouch don up`")
        raise typer.Exit(1)
    don = DonConfig.load(stack.don_file)
    rows = stack.supervisor(don).status()
    table = Table("node", "signer", "url", "pid", "health", "fault", "rounds", "last round")
    for row in rows:
        health = "[green]ok[/]" if row.healthy else f"[red]{row.detail}[/]"
        fault = row.fault if row.fault == "none" else f"[yellow]{row.fault}[/]"
        table.add_row(
            row.name,
            row.address,
            row.url,
            str(row.pid or "-"),
            health,
            fault,
            str(row.rounds),
            _last_round(row.last_round, row.last_round_at),
        )
    console.print(table)
    console.print(f"n={len(don.nodes)}, f={don.f}, quorum 2f+1={don.quorum}")
    if not any(row.healthy for row in rows):  # reads only: starts nothing, says how
        console.print("the DON is not running: start it with `vouch chain up` and `vouch don up`")
        raise typer.Exit(2)
    if not all(row.healthy for row in rows):
        raise typer.Exit(1)


class FaultChoice(StrEnum):
    """The fault modes of cre_adapters.FaultMode, as CLI choices."""

    none = "none"
    down = "down"
    slow = "slow"
    flaky = "flaky"
    stale = "stale"
    lie = "lie"
    equivocate = "equivocate"
    bad_signature = "bad-signature"
    wrong_key = "wrong-key"
    crash_mid_round = "crash-mid-round"


class SlowAt(StrEnum):
    """Where a slow node is slow."""

    link = "link"
    server = "server"


# tests/test_startup.py checks FaultChoice lists cre_adapters.FAULT_MODES (not asserted
# here: that would import the adapters for `vouch --help`)


def _last_round(round_id: str | None, at: float | None) -> str:
    if round_id is None:
        return "-"
    import time

    return f"{round_id[:14]} ({time.time() - at:.0f}s ago)" if at else round_id[:14]


@don_app.command("fault")
def don_fault(
    node: Annotated[str, typer.Argument(help="Node name, e.g. node-3.")],
    mode: Annotated[FaultChoice, typer.Argument(help="The fault mode.")],
    delay: Annotated[float, typer.Option(help="slow: seconds added.")] = 2.0,
    error_rate: Annotated[float, typer.Option(help="flaky: share of failed requests.")] = 0.5,
    stale_by: Annotated[int, typer.Option(help="stale: seconds in the past.")] = 3600,
    lie_bps: Annotated[int, typer.Option(help="lie/equivocate: offset in bps.")] = 5000,
    slow_at: Annotated[
        SlowAt, typer.Option(help="slow: a slow link (late answer) or a slow server (late work).")
    ] = SlowAt.link,
    kill: Annotated[
        bool, typer.Option("--kill", help="down: the node's process exits (a dead node).")
    ] = False,
) -> None:
    """Make a running node misbehave (or `none` to heal it), via its loopback admin endpoint.

    The fault is recorded with the DON (`don status` shows it, also for a node that
    is down; commands never heal it). `none` on a killed node starts it again.
    """
    from vouch.cre_adapters import DonConfig, FaultSpec, set_fault

    from .._stack import Stack

    stack = Stack(settings())
    spec = FaultSpec.model_validate(
        {
            "mode": mode.value,
            "delay": delay,
            "error_rate": error_rate,
            "stale_by": stale_by,
            "lie_bps": lie_bps,
            "slow_at": slow_at.value,
            "kill": kill,
        }
    )
    don = DonConfig.load(stack.don_file)
    supervisor = stack.supervisor(don)
    if node not in supervisor.running() and spec.mode == "none":
        supervisor.start([node])  # healing a killed node: it runs again
    applied = spec if node not in supervisor.running() else set_fault(don, node, spec)
    supervisor.record_fault(node, applied)
    console.print(f"{node}: fault mode {applied.mode}" + (" (process killed)" if kill else ""))


@node_app.command("run")
def node_run(
    don: Annotated[Path, typer.Option(help="DON config file.")],
    node: Annotated[str, typer.Option(help="This node's name in the DON config.")],
    password_file: Annotated[
        Path | None,
        typer.Option(help="File (0600) with this node's keystore password (default: its own)."),
    ] = None,
) -> None:
    """Run one oracle node in the foreground.

    Its keystore password: VOUCH_KEY_PASSWORDS__NODE_<i>, --password-file,
    VOUCH_KEYSTORE_PASSWORD, or the keystore's own file <keystore>.password.
    """
    from vouch.cre_adapters import DonConfig, load_key, serve

    from .._stack import key_password

    cfg = settings()
    config = DonConfig.load(don)
    keystore = config.node(node).keystore
    key_id = keystore.stem.replace("-", "_")
    key = load_key(keystore, key_password(cfg, key_id, keystore, password_file))
    serve(config, node, key)
