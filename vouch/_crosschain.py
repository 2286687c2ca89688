"""`vouch demo cross-chain`: a message from chain A executed on chain B once the DON attests it.

Chain A is the home's chain and deployment; chain B is a second local anvil
(chain id A + 1) started for the demo with its own Forwarder configured with
the same DON. A gateway on each chain; a message with a token leg is sent on
A; the relay (an EVM-log trigger on A's ``MessageSent``) has every node read
the event from chain A itself, agrees on its hash (identical consensus),
has f+1 nodes sign a report for chain B and delivers it through B's
forwarder, where gateway B releases the tokens and calls the receiver, once.
Every step goes into the relay's attestation log, which is then audited
against chain B, onchain events included.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from web3 import Web3

from vouch.cre_adapters import ChainTarget, DonConfig, EvmQuery, MessageRelay, SourceSpec
from vouch.cre_adapters.evm import (
    ANVIL_DEV_KEYS,
    Artifacts,
    ChainWriter,
    Deployment,
    contract,
    deploy_forwarder,
    deploy_gateway,
    free_port,
    start_anvil,
)
from vouch.verifier import AttestationLog, Web3ChainReader, audit

from ._auditing import show_report
from ._errors import VouchError
from ._settings import VouchSettings
from ._stack import Chain, Stack

ONE = 10**18
FEED = "MSG/A"  # the nodes' feed for gateway A's messages
DEFAULT_MESSAGE = "hello from chain A, attested by the DON"


def run_cross_chain_demo(
    settings: VouchSettings, console: Console, message: str = DEFAULT_MESSAGE, amount: int = 2
) -> dict[str, Any]:
    """Relay one message with ``amount`` tokens from chain A to chain B; audit it; the outcome.

    Raises:
        VouchError: if the message was not delivered, or the audit found anything.
        cre_adapters.QuorumNotReached: if too few nodes answered; nothing was delivered.
    """
    say, stack = console.print, Stack(settings)
    console.rule("[bold]vouch demo: a cross-chain message")
    with console.status("starting chain A…"):
        chain = stack.chain_up()
        artifacts = stack.artifacts()
        deployment, _ = stack.deploy(chain, artifacts)
    say(
        f"[green]✓[/] chain A: {chain.chain_id} at {chain.url}, Forwarder {deployment.address('Forwarder')}"
    )
    home = settings.home / "cross-chain"
    home.mkdir(parents=True, exist_ok=True)
    with console.status("starting chain B…"):
        anvil_b = start_anvil(
            stack.toolchain, chain_id=chain.chain_id + 1, log_file=home / "anvil-b.log"
        )
    try:
        return _relay_once(
            settings, console, stack, chain, artifacts, deployment, anvil_b.url, message, amount
        )
    finally:
        anvil_b.stop()
        say("[dim]chain B stopped[/]")


def _relay_once(
    settings: VouchSettings,
    console: Console,
    stack: Stack,
    chain: Chain,
    artifacts: Artifacts,
    deployment: Deployment,
    url_b: str,
    message: str,
    amount: int,
) -> dict[str, Any]:
    say = console.print
    writer_a = stack.writer(chain, artifacts)
    w3_b = Web3(Web3.HTTPProvider(url_b))
    writer_b = ChainWriter(w3_b, ANVIL_DEV_KEYS[0], writer_a.decoder)
    say(f"[green]✓[/] chain B: {writer_b.chain_id} at {url_b} (managed anvil, for this demo)")
    with console.status("deploying a gateway on each chain…"):
        a, b = _gateways(artifacts, deployment, writer_a, writer_b, amount)
    say(
        f"[green]✓[/] gateways: A {a['gateway']} → B {b['gateway']} "
        f"(B's Forwarder {b['forwarder']}, same DON, f={deployment.don.f})"
    )
    home = settings.home / "cross-chain"
    don = _relay_don(stack, deployment, chain.url, a["gateway"], writer_b.chain_id, b["forwarder"])
    supervisor = stack.supervisor(don, home / "don.json", home / "run")
    don.save(home / "don.json")
    log = AttestationLog(_new_log(home))
    relay = MessageRelay(
        don,
        source_rpc=chain.url,
        source_gateway=a["gateway"],
        feed=FEED,
        dest_writer=writer_b,
        dest_forwarder=b["forwarder"],
        dest_gateway=b["gateway"],
        workflow=b["workflow"],
        artifacts=artifacts,
        log=log,
        timeout=settings.node_timeout,
        poll=0.1,
    )

    async def scenario() -> dict[str, Any]:
        task = asyncio.create_task(relay.run(max_firings=1, wait=60))
        await asyncio.sleep(0.3)  # the relay watches from the next block on
        send = a["gw"].functions.send(writer_b.chain_id, b["sink"], message.encode(), amount * ONE)
        receipt = await asyncio.to_thread(writer_a.transact, send)
        say(
            f"\n  [green]✓[/] message sent on chain A with {amount} BRG "
            f"(block {receipt['blockNumber']}, tx 0x{bytes(receipt['transactionHash']).hex()[:16]}…)"
        )
        say(f"  … {len(don.nodes)} nodes read the MessageSent event from chain A themselves")
        [outcome] = await task
        return outcome

    with console.status(f"starting {len(don.nodes)} relay nodes…"):
        supervisor.start()
    try:
        outcome = asyncio.run(scenario())
    finally:
        supervisor.stop()
    if outcome["status"] != "delivered":
        raise VouchError(f"the message was not delivered on chain B: {outcome['status']}")
    sink = contract(w3_b, artifacts, "MessageSink", b["sink"])
    received = bytes(sink.functions.lastPayload().call()).decode()
    say(
        f"  [green]✓[/] identical consensus on the message hash, report signed by f+1 = {don.f + 1} nodes"
    )
    say(
        f"  [green]●[/] executed on chain B in block {outcome['block_number']} "
        f"(tx {outcome['tx_hash'][:18]}…): the receiver got “{received}” and {amount} BRG were released"
    )
    with console.status("auditing the relay log against chain B…"):
        report = audit(log, Web3ChainReader(w3_b), forwarder=b["forwarder"], gateway=b["gateway"])
    console.print()
    show_report(console, report, log.path, verbose=False)
    if not report.ok:
        raise VouchError(f"the audit of {log.path} found {len(report.failures)} failed checks")
    say(f"the relay's log: {log.path} (audited against chain B, which stops with the demo)")
    return {**outcome, "received": received, "log": str(log.path), "chain_b": writer_b.chain_id}


def _new_log(home: Path) -> Path:
    """A log file of this run's own: chain B lives only as long as the demo that audits it."""
    stem = time.strftime("relay-%Y%m%d-%H%M%S")
    path, n = home / f"{stem}.db", 1
    while path.exists():
        n += 1
        path = home / f"{stem}-{n}.db"
    return path


def _gateways(
    artifacts: Artifacts,
    deployment: Deployment,
    writer_a: ChainWriter,
    writer_b: ChainWriter,
    amount: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Token and gateway on A (a bucket towards B, tokens to send); forwarder, token, gateway, sink on B."""
    w3_a, w3_b, chain_b = writer_a.w3, writer_b.w3, writer_b.chain_id
    token = artifacts.get("TestToken")
    forwarder_b = deploy_forwarder(writer_b, artifacts, deployment.don)
    token_b, _ = writer_b.deploy(token.abi, token.bytecode, "Bridged (test)", "BRG")
    workflow_b = deployment.workflow.model_copy(update={"owner": writer_b.address})
    gateway_b = deploy_gateway(
        writer_b, artifacts, forwarder_b, token_b, workflow_b, don=deployment.don
    )
    sink, _ = writer_b.deploy(
        artifacts.get("MessageSink").abi, artifacts.get("MessageSink").bytecode
    )
    writer_b.transact(
        contract(w3_b, artifacts, "TestToken", token_b).functions.mint(gateway_b, 1_000 * ONE)
    )
    token_a, _ = writer_a.deploy(token.abi, token.bytecode, "Bridged (test)", "BRG")
    gateway_a = deploy_gateway(
        writer_a,
        artifacts,
        deployment.address("Forwarder"),
        token_a,
        deployment.workflow,
        don=deployment.don,
    )
    gw_a = contract(w3_a, artifacts, "CrossChainGateway", gateway_a)
    writer_a.transact(gw_a.functions.setBucket(chain_b, 100 * ONE, ONE))
    tok_a = contract(w3_a, artifacts, "TestToken", token_a)
    writer_a.transact(tok_a.functions.mint(writer_a.address, amount * ONE))
    writer_a.transact(tok_a.functions.approve(gateway_a, amount * ONE))
    gw_b = contract(w3_b, artifacts, "CrossChainGateway", gateway_b)
    writer_b.transact(gw_b.functions.setSource(writer_a.chain_id, gateway_a))
    # inbound: what B releases for A's messages is rate-limited as A's outbound is
    writer_b.transact(gw_b.functions.setInboundBucket(writer_a.chain_id, 100 * ONE, ONE))
    a = {"gateway": gateway_a, "gw": gw_a}
    b = {"gateway": gateway_b, "forwarder": forwarder_b, "sink": sink, "workflow": workflow_b}
    return a, b


def _relay_don(
    stack: Stack, deployment: Deployment, rpc_a: str, gateway_a: str, chain_b: int, forwarder_b: str
) -> DonConfig:
    """The home DON's keys on new ports, each node reading gateway A's messages from chain A."""
    source = SourceSpec(
        kind="evm", rpc_url=rpc_a, evm={FEED: EvmQuery(kind="message", address=gateway_a)}
    )
    don = stack.don_config(deployment)
    nodes = [n.model_copy(update={"port": free_port(), "source": source}) for n in don.nodes]
    return don.model_copy(
        update={
            "nodes": nodes,
            "targets": [ChainTarget(chain_id=chain_b, forwarder=forwarder_b)],
            "admin_token_file": None,
        }
    )


__all__ = ["run_cross_chain_demo"]
