"""Helpers for DONs of separate hosts: bundles, node processes, a settlement round."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from vouch.cre_adapters import (
    Bundles,
    Coordinator,
    DonConfig,
    ObserveRequest,
    SettlementSignRequest,
    SignResponse,
    health,
    init_bundles,
)
from vouch.verifier import (
    ReportBody,
    ReportMetadata,
    SettlementPayload,
    SignedObservation,
    encode_report,
    median,
    recover_report_signer,
    report_context,
    report_digest,
    workflow_id,
)

FORWARDER = "0x000000000000000000000000000000000000dEaD"
RECEIVER = "0x" + "11" * 20
NODE_MODULE = "vouch.cre_adapters.node"


def bundles(out: Path, hosts: list[str], port: int) -> Bundles:
    """Bundles for ``hosts`` with cheap (throwaway) keystores."""
    return init_bundles(
        out, hosts, f=None, chain_id=31337, forwarder=FORWARDER, port=port, scrypt_n=2**10
    )


def node_command(bundle: Path, name: str) -> list[str]:
    """How a node host starts one node from its bundle."""
    return [sys.executable, "-m", NODE_MODULE, "--don", str(bundle / "don.json"), "--node", name]


def wait_healthy(don: DonConfig, names: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(names)
    while waiting and time.monotonic() < deadline:
        waiting = [n for n in waiting if health(don.node(n), 1.0, don) is None]
        time.sleep(0.1)
    assert not waiting, f"nodes {waiting} never became healthy"


def start_nodes(made: Bundles, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    """Every node from its host's bundle; the last one through `vouch node run` (both work)."""
    procs = []
    for node in made.don.nodes:
        command = node_command(made.hosts[node.host], node.name)
        if node is made.don.nodes[-1]:
            command[2:3] = ["vouch", "node", "run"]  # python -m vouch node run --don .. --node ..
        with (log_dir / f"{node.name}.log").open("wb") as out:
            procs.append(subprocess.Popen(command, stdout=out, stderr=out, cwd=log_dir))
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sign_request(
    don: DonConfig, request: ObserveRequest, observations: list[SignedObservation], seq: int
) -> tuple[SettlementSignRequest, bytes]:
    """A settlement sign request over ``observations`` and the digest every signer must sign."""
    meta = ReportMetadata(
        version=1,
        execution_id=seq.to_bytes(32, "big"),
        timestamp=int(time.time()),
        don_id=don.don_id,
        config_version=don.config_version,
        workflow_id=workflow_id("hosts"),
        workflow_name="hosts",
        workflow_owner="0x" + "22" * 20,
        report_id=b"\x00\x01",
    )
    price = median([o.observation.value for o in observations])
    body = ReportBody(
        chain_id=don.chain_id,
        receiver=RECEIVER,
        timestamp=meta.timestamp,
        action_hash=bytes(32),
        payload=SettlementPayload(trade_id=1, price=price).encode(),
    )
    req = SettlementSignRequest(
        request_id=request.request_id,
        feed=request.feed,
        observations=observations,
        metadata=meta,
        receiver=RECEIVER,
        action_hash="0x" + "00" * 32,
        trade_id=1,
        sequence=seq,
    )
    digest = report_digest(encode_report(meta, body), report_context(don.digest(), seq))
    return req, digest


def check_signed(don: DonConfig, digest: bytes, signatures: list[SignResponse]) -> list[str]:
    """The distinct DON signers of ``digest`` (asserting f+1 of them); their addresses."""
    signers = [
        recover_report_signer(digest, bytes.fromhex(s.signature.removeprefix("0x")))
        for s in signatures
    ]
    assert len(set(signers)) == don.f + 1 and set(signers) <= set(don.signers)
    return signers


async def settle(coordinator: Coordinator, seq: int) -> list[str]:
    """One round (observe, then sign); the signers of the report."""
    request = ObserveRequest(request_id=f"hosts-{seq}", feed="ETH/USD")
    observations = await coordinator.observe(request)
    req, digest = sign_request(coordinator.don, request, observations, seq)
    return check_signed(coordinator.don, digest, await coordinator.sign(req, digest))
