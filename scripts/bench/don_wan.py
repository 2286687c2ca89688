"""DON rounds under network latency: p50 and p95 round time in RTTs, n = 4, 7, 16, 31.

Each node is a real process (``python -m vouch.cre_adapters.node``, started
from its own bundle of ``vouch don init``) on its own loopback address
127.0.0.k, over pinned mutual TLS, on kept-alive connections (the default
httpx client). In front of each node sits the userspace latency proxy
(scripts/bench/latency_proxy.py, one process for all links): each direction
of each link is delayed by RTT/2 with +/- jitter and optional loss (a lost
chunk arrives one TCP retransmission timeout late). Connections are opened
before measuring (two per node, as the echo uses them), as a coordinator
that runs rounds continuously has them; the TLS handshakes are not counted.

A round is what a settlement does offchain: 2f+1 signed observations (each
node asked twice at once, the equivocation echo), checked, then f+1 report
signatures over the re-derived median, checked. That is two sequential round
trips, so the least a round can take is 2 RTT plus its own work. The floor
shown is measured in the same run: 2 RTT + the p50 of the same DON's rounds
through the proxy set to zero delay (the work, including the proxy's own
hops, on this machine's cores, which every node process, the proxy and the
coordinator share); the p50 without any proxy is shown too.

The work term is broken down in the same zero-delay pass: the CPU a round
costs the coordinator process and all node processes together (from
/proc/<pid>/stat; Linux), and the p50 and CPU of the same rounds without the
echo (each node asked once: what the echo's second ask costs; the echo stays
on in every other column, as in production). Under load the CPU columns are
the steadier ones: a p50 is one pass of rounds, the CPU a sum over them.

Usage: .venv/bin/python scripts/bench/don_wan.py [--sizes 4,7,16,31] [--rtts 20,80]
       [--rounds 40] [--jitter-ms 1] [--loss 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vouch.cre_adapters import (
    Coordinator,
    DonConfig,
    ObserveRequest,
    health,
    init_bundles,
)
from vouch.cre_adapters.evm import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from don import sign_request  # noqa: E402  (the loopback bench's round)

PROXY = Path(__file__).resolve().parent / "latency_proxy.py"
FORWARDER = "0x000000000000000000000000000000000000dEaD"
TARGETS = {4: 2.3, 31: 2.6}


def start_don(n: int, home: Path) -> tuple[DonConfig, list[subprocess.Popen[bytes]]]:
    hosts = [f"127.0.0.{k}" for k in range(1, n + 1)]
    made = init_bundles(
        home / "b",
        hosts,
        f=None,
        chain_id=31337,
        forwarder=FORWARDER,
        port=free_port(),
        scrypt_n=2**10,
    )
    procs = []
    for node in made.don.nodes:
        with (home / f"{node.name}.log").open("wb") as log:
            cmd = [sys.executable, "-m", "vouch.cre_adapters.node"]
            cmd += ["--don", str(made.hosts[node.host] / "don.json"), "--node", node.name]
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))
    don = DonConfig.load(made.owner / "don.json")
    deadline = time.monotonic() + 900  # 31 node processes on a loaded 2-core machine
    waiting = list(don.nodes)
    while waiting and time.monotonic() < deadline:
        waiting = [node for node in waiting if health(node, 2.0, don) is None]
        time.sleep(0.2)
    if waiting:
        raise SystemExit(f"nodes {[n.name for n in waiting]} did not start; logs in {home}")
    return don, procs


def start_proxy(
    don: DonConfig, rtt_ms: float, jitter_ms: float, loss: float
) -> tuple[DonConfig, subprocess.Popen[str]]:
    """The proxy process in front of every node; the DON as the coordinator then sees it."""
    ports = {node.name: free_port() for node in don.nodes}
    cmd = [sys.executable, str(PROXY), "--delay-ms", str(rtt_ms / 2)]
    cmd += ["--jitter-ms", str(jitter_ms), "--loss", str(loss)]
    for node in don.nodes:
        cmd += ["--link", f"{node.host}:{ports[node.name]}={node.host}:{node.port}"]
    proxy = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proxy.stdout is not None and proxy.stdout.readline().strip() == "ready"
    nodes = [node.model_copy(update={"port": ports[node.name]}) for node in don.nodes]
    return don.model_copy(update={"nodes": nodes}), proxy


@dataclass
class Cpu:
    """CPU seconds of the coordinator (this process) and of the node processes, over rounds."""

    procs: list[subprocess.Popen[bytes]]
    coordinator: float = 0.0
    nodes: float = 0.0
    rounds: int = 0

    def sample(self) -> tuple[float, float]:
        return time.process_time(), sum(_cpu_seconds(p.pid) for p in self.procs)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def rounds(
    don: DonConfig, count: int, stamp: int, rtt: float = 0.0, cpu: Cpu | None = None
) -> list[float]:
    """``count`` rounds on connections kept alive (opened first: a running coordinator's state).

    Hedging (asking the reserve nodes when a stage is late) waits 3 RTT on a
    link with latency: the loopback default (0.25 s) is below one 80 ms round.
    With ``cpu``, the CPU the measured rounds cost is added to it.
    """
    times: list[float] = []
    hedge = max(0.25, 3 * rtt / 1000)
    async with Coordinator(don, timeout=10, hedge_after=hedge).connected() as coordinator:
        client = coordinator.client
        assert client is not None
        body = ObserveRequest(request_id=f"warm-{stamp}", feed="ETH/USD").model_dump_json()
        await asyncio.gather(  # two connections per node: the echo asks as two askers
            *(client.post(n.url + "/observe", body.encode(), 10) for n in don.nodes for _ in "ab")
        )
        for i in range(-3, count):  # 3 warm-up rounds
            if i == 0 and cpu is not None:
                before = cpu.sample()
            started = time.perf_counter()
            request = ObserveRequest(request_id=f"wan-{stamp}-{i + 3}", feed="ETH/USD")
            observations = await coordinator.observe(request)
            req, digest = sign_request(don, request, observations, stamp + i + 3)
            await coordinator.sign(req, digest)
            if i >= 0:
                times.append(time.perf_counter() - started)
        if cpu is not None and count > 0:
            after = cpu.sample()
            cpu.coordinator += after[0] - before[0]
            cpu.nodes += after[1] - before[1]
            cpu.rounds += count
    return times


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,7,16,31")
    parser.add_argument("--rtts", default="20,80", help="round-trip times in ms")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--jitter-ms", type=float, default=1.0)
    parser.add_argument("--loss", type=float, default=0.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rtts = [float(r) for r in args.rtts.split(",")]
    rows = []
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"vouch-wan-{n}-") as tmp:
            don, procs = start_don(n, Path(tmp))
            try:
                stamp = time.time_ns() // 1000
                local = asyncio.run(rounds(don, args.rounds, stamp))
                direct = pct(local, 0.5)
                view, proxy = start_proxy(don, 0.0, 0.0, 0.0)
                try:
                    stamp += 10_000
                    cpu = Cpu(procs)
                    work = pct(asyncio.run(rounds(view, args.rounds, stamp, cpu=cpu)), 0.5)
                    stamp += 10_000
                    once = view.model_copy(update={"echo": False})
                    cpu_once = Cpu(procs)
                    no_echo = pct(asyncio.run(rounds(once, args.rounds, stamp, cpu=cpu_once)), 0.5)
                finally:
                    proxy.terminate()
                    proxy.wait()
                for rtt in rtts:
                    view, proxy = start_proxy(don, rtt, args.jitter_ms, args.loss)
                    try:
                        stamp += 10_000
                        times = asyncio.run(rounds(view, args.rounds, stamp, rtt))
                    finally:
                        proxy.terminate()
                        proxy.wait()
                    p50, p95 = pct(times, 0.5), pct(times, 0.95)
                    rows.append(
                        Row(
                            n,
                            (n - 1) // 3,
                            rtt,
                            len(times),
                            p50,
                            p95,
                            direct,
                            work,
                            no_echo,
                            cpu,
                            cpu_once,
                        )
                    )
                    print(f"n={n} rtt={rtt:.0f}ms: p50 {p50 / rtt:.2f} RTT", file=sys.stderr)
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait()
    print(table(rows, load_before, time.monotonic() - began, args))


@dataclass(frozen=True)
class Row:
    n: int
    f: int
    rtt: float
    count: int
    p50: float
    p95: float
    direct: float
    work: float
    no_echo: float
    cpu: Cpu
    cpu_once: Cpu

    @staticmethod
    def per_round(cpu: Cpu) -> str:
        rounds = max(1, cpu.rounds)
        return f"{1000 * cpu.coordinator / rounds:.1f}, {1000 * cpu.nodes / rounds:.1f}"


def table(rows: list[Row], load_before: float, took: float, args: argparse.Namespace) -> str:
    """The results as a Markdown table with its heading line: paste-able into the docs."""
    cores = os.cpu_count() or 1
    lines = [
        "",
        f"{cores} cores, load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        f"(other work on the machine shows here); the run took {took / 60:.1f} min; "
        f"jitter +/-{args.jitter_ms} ms per direction, loss {args.loss:.1%}, mutual TLS, httpx, "
        "echo on (but in the no-echo column)",
        "",
        "| n | f | RTT ms | rounds | p50 ms | p95 ms | p50 RTT | p95 RTT | target p50 "
        "| p50 ms, no proxy | p50 ms, proxy at RTT 0 (work) | floor RTT (2 + work/RTT) "
        "| work p50 ms without the echo | CPU ms/round at RTT 0: coordinator, nodes "
        "| the same without the echo |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = f"<= {TARGETS[r.n]}" if r.n in TARGETS else "-"
        lines.append(
            f"| {r.n} | {r.f} | {r.rtt:.0f} | {r.count} | {r.p50:.1f} | {r.p95:.1f} "
            f"| {r.p50 / r.rtt:.2f} | {r.p95 / r.rtt:.2f} | {target} | {r.direct:.1f} "
            f"| {r.work:.1f} | {2 + r.work / r.rtt:.2f} | {r.no_echo:.1f} "
            f"| {Row.per_round(r.cpu)} | {Row.per_round(r.cpu_once)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
