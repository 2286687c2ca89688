"""Separate hosts for real: every node in its own Linux network namespace, over mutual TLS.

The fixture makes one namespace per node and one for the coordinator, each
with its own address 10.231.1.x on a veth pair to a bridge that lives in a
namespace of its own (nothing is added to the host's network), starts each
node there from its own bundle of ``vouch don init --hosts``, and removes it
all afterwards. The coordinator runs in its namespace as its own process.
n=4, f=1: a round settles; then a node of the observation set is killed
(SIGKILL) between observe and sign, and the round still settles with the
other signers. Needs root and ``ip netns``; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vouch.cre_adapters import Bundles

from ._hosts import bundles, node_command, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NET = "10.231.1"
PORT = 8443
ROOT = Path(__file__).resolve().parents[2]


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) on this machine"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"vtp{os.getpid() % 100000}"
    try:
        ip("netns", "add", probe)
        ip("netns", "del", probe)
    except RuntimeError as exc:
        return f"cannot create a network namespace: {exc}"
    return None


class Hosts:
    """Namespaces ``<p>c`` (coordinator) and ``<p>1..n`` (nodes) on a bridge in ``<p>br``."""

    def __init__(self, n: int) -> None:
        self.prefix = f"vt{os.getpid() % 100000}"
        self.n = n
        self.made: list[str] = []

    def ns(self, who: str) -> str:
        return f"{self.prefix}{who}"

    def address(self, who: str) -> str:
        return f"{NET}.{1 if who == 'c' else int(who) + 1}"

    def up(self) -> None:
        bridge = self.ns("br")
        ip("netns", "add", bridge)
        self.made.append(bridge)
        ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", bridge, "link", "set", "br0", "up")
        for who in ["c", *(str(i) for i in range(1, self.n + 1))]:
            ns = self.ns(who)
            ip("netns", "add", ns)
            self.made.append(ns)
            port = f"v{who}"
            ip(
                "-n",
                bridge,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            ip("-n", bridge, "link", "set", port, "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{self.address(who)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def down(self) -> None:
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)
        self.made.clear()

    def run(self, who: str, cmd: list[str], **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", self.ns(who), *cmd], text=True, **kw)  # type: ignore[call-overload]


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[Hosts, Bundles, list[subprocess.Popen[str]]]]:
    reason = netns_unavailable()
    if reason:
        pytest.skip(f"separate-host test needs Linux network namespaces: {reason}")
    net = Hosts(4)
    procs: list[subprocess.Popen[str]] = []
    try:
        net.up()
        made = bundles(tmp_path / "bundles", [net.address(str(i)) for i in range(1, 5)], PORT)
        for i, node in enumerate(made.don.nodes, start=1):
            with (tmp_path / f"{node.name}.log").open("w") as log:
                command = node_command(made.hosts[node.host], node.name)
                procs.append(net.run(str(i), command, stdout=log, stderr=log))
        yield net, made, procs
    finally:
        stop(procs)  # type: ignore[arg-type]
        net.down()


def space_of(pid: int, ours: str, timeout: float = 10.0) -> str:
    """The network namespace of ``pid`` once ``ip netns exec`` has entered it (or ours at timeout)."""
    deadline = time.monotonic() + timeout
    space = os.readlink(f"/proc/{pid}/ns/net")
    while space == ours and time.monotonic() < deadline:
        time.sleep(0.05)
        space = os.readlink(f"/proc/{pid}/ns/net")
    return space


COORDINATOR = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from vouch.cre_adapters import Coordinator, DonConfig, FaultSpec, ObserveRequest, set_fault
    from tests.don._hosts import check_signed, settle, sign_request, wait_healthy

    don = DonConfig.load(Path({don!r}))
    wait_healthy(don, [n.name for n in don.nodes])
    # the owner's admin, off loopback over mutual TLS (a node host has no token file)
    applied = set_fault(don, "node-3", FaultSpec(mode="none"))
    print("ADMIN", applied.mode, flush=True)

    async def main():
        async with Coordinator(don, timeout=5).connected() as coordinator:
            print("SETTLED", *await settle(coordinator, 1), flush=True)
            request = ObserveRequest(request_id="netns-2", feed="ETH/USD")
            observations = await coordinator.observe(request)
            first = don.signers.index(observations[0].observation.node)
            print("OBSERVED", first, flush=True)
            sys.stdin.readline()  # the test kills that node now
            req, digest = sign_request(don, request, observations, 2)
            signers = check_signed(don, digest, await coordinator.sign(req, digest))
            absent = ",".join(f"{{a.node}}={{a.cause}}" for a in coordinator.last_signing)
            print("SETTLED", *signers, "ABSENT", absent, flush=True)

    asyncio.run(main())
    """
)


def test_n4_over_tls_in_separate_namespaces_settles_with_a_node_killed_mid_round(
    hosts: tuple[Hosts, Bundles, list[subprocess.Popen[str]]], tmp_path: Path
) -> None:
    net, made, procs = hosts
    don = made.don
    # every node process runs in a network namespace of its own, none in this test's
    ours = os.readlink("/proc/self/ns/net")
    spaces = [space_of(proc.pid, ours) for proc in procs]
    assert len(set(spaces)) == 4 and ours not in spaces
    script = tmp_path / "coordinator.py"
    script.write_text(COORDINATOR.format(root=str(ROOT), don=str(made.owner / "don.json")))
    coordinator = net.run(
        "c",
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(ROOT),
    )
    try:
        assert coordinator.stdout is not None and coordinator.stdin is not None
        lines = []
        for _ in range(3):
            line = coordinator.stdout.readline().split()
            assert line, coordinator.stderr.read() if coordinator.stderr else ""
            lines.append(line)
            if line[0] == "OBSERVED":
                break
        assert lines[0] == ["ADMIN", "none"]
        assert lines[1][0] == "SETTLED" and len(lines[1]) == 3
        killed = int(lines[2][1])
        procs[killed].kill()  # SIGKILL, mid-round: after observe, before sign
        procs[killed].wait(10)
        coordinator.stdin.write("go\n")
        coordinator.stdin.flush()
        last = coordinator.stdout.readline().split()
        assert last and last[0] == "SETTLED", (
            coordinator.stderr.read() if coordinator.stderr else ""
        )
        signers = last[1:3]
        assert don.signers[killed] not in signers and set(signers) <= set(don.signers)
        # it was asked to sign first (its observation led the set) and found dead
        assert last[3] == "ABSENT" and f"{don.nodes[killed].name}=down" in last[4].split(",")
        assert coordinator.wait(30) == 0
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
            coordinator.wait()
        for stream in (coordinator.stdin, coordinator.stdout, coordinator.stderr):
            if stream is not None:
                stream.close()
