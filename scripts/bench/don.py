"""DON round latency and throughput for n = 4, 7, 10, 16, 31 real node processes on loopback.

A round is what a settlement does offchain: 2f+1 nodes asked for a signed
observation (each twice at once, the equivocation echo; the others held in
reserve for failures), 2f+1 fresh and mutually consistent ones checked, a
Keystone report built, and f+1 nodes verify every observation signature,
re-derive the median and sign it, every signature checked by the
coordinator. No chain: the forwarder address is a placeholder and nothing is
submitted.

The baseline, measured in the same run against node-1 of the 4-node DON: one
plain signed HTTP round trip (POST /observe with a fresh request id, parse,
recover the signature as the coordinator does) on a kept-alive connection,
with the coordinator's own HTTP client (``NodeClient``); the same on httpx is
printed for reference. All node processes and the coordinator share this
machine's cores: the load average is printed with the results.

Last, the protocol floor per n: the least wall time the work a round must do
takes on this machine's cores (each observation and signature at least what
one baseline round trip costs its node, each checked once, each signer's 2f
recoveries; nothing else, perfect overlap), from the baseline's node CPU and
the recovery CPU measured in the same run; and whether, with that floor, a
first-size round within 3x of the baseline and a last-size round growing
slower than n can both hold on these cores.

Usage: .venv/bin/python scripts/bench/don.py [--sizes 4,7,10,16,31] [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from eth_account import Account

from vouch.cre_adapters import (
    Coordinator,
    DonConfig,
    DonSupervisor,
    NodeSpec,
    ObserveRequest,
    SettlementSignRequest,
    SourceSpec,
    create_keystore,
)
from vouch.cre_adapters._signer import address_bytes, observation_signer
from vouch.cre_adapters._wire import NodeClient
from vouch.cre_adapters.evm import free_port
from vouch.verifier import (
    ReportBody,
    ReportMetadata,
    SettlementPayload,
    SignedObservation,
    encode_report,
    median,
    report_context,
    report_digest,
    workflow_id,
)

PASSWORD = "bench-only"
RECEIVER = "0x" + "11" * 20
OWNER = "0x" + "22" * 20


def make_don(n: int, home: Path) -> DonConfig:
    nodes = []
    for i in range(1, n + 1):
        path = home / "keys" / f"node-{i}.json"
        address = create_keystore(path, PASSWORD, scrypt_n=2**12)
        nodes.append(
            NodeSpec(
                name=f"node-{i}",
                address=address,
                port=free_port(),
                keystore=path,
                source=SourceSpec(node_seed=1000 + i),
            )
        )
    forwarder = Account.create().address
    return DonConfig(f=(n - 1) // 3, chain_id=31337, forwarder=forwarder, nodes=nodes)


def start(don: DonConfig, home: Path) -> DonSupervisor:
    (home / "password").write_text(PASSWORD)
    don.save(home / "don.json")
    launcher = [
        sys.executable,
        "-m",
        "vouch",
        "node",
        "run",
        "--password-file",
        str(home / "password"),
    ]
    supervisor = DonSupervisor(don, home / "don.json", home / "run", launcher)
    supervisor.start()
    return supervisor


def sign_request(
    don: DonConfig, request: ObserveRequest, observations: list[SignedObservation], seq: int
) -> tuple[SettlementSignRequest, bytes]:
    meta = ReportMetadata(
        version=1,
        execution_id=seq.to_bytes(32, "big"),
        timestamp=int(time.time()),
        don_id=don.don_id,
        config_version=don.config_version,
        workflow_id=workflow_id("bench"),
        workflow_name="bench",
        workflow_owner=OWNER,
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


async def one_round(coordinator: Coordinator, seq: int) -> None:
    request = ObserveRequest(request_id=f"bench-{seq}", feed="ETH/USD")
    observations = await coordinator.observe(request)
    req, digest = sign_request(coordinator.don, request, observations, seq)
    await coordinator.sign(req, digest)


async def measure(func, seconds: float, max_runs: int = 2000) -> list[float]:  # type: ignore[no-untyped-def]
    for i in range(5):  # warm up connections and caches
        await func(-1 - i)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and len(latencies) < max_runs:
        started = time.perf_counter()
        await func(len(latencies))
        latencies.append(time.perf_counter() - started)
    return latencies


async def bench_rounds(don: DonConfig, seconds: float) -> list[float]:
    async with NodeClient() as client:
        coordinator = Coordinator(don, timeout=10, client=client)
        stamp = time.time_ns()
        return await measure(lambda i: one_round(coordinator, stamp + i), seconds)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_round(don: DonConfig, supervisor: DonSupervisor, seconds: float) -> tuple[float, float]:
    """(coordinator, all nodes) CPU ms per round: what the cores must do, whoever waits."""
    pids = supervisor.pids().values()
    nodes_before, me_before = sum(map(process_cpu, pids)), time.process_time()
    rounds = len(asyncio.run(bench_rounds(don, seconds))) + 5  # measure() warms up with 5
    nodes = sum(map(process_cpu, pids)) - nodes_before
    return (time.process_time() - me_before) * 1000 / rounds, nodes * 1000 / rounds


async def bench_baseline(
    node: NodeSpec, seconds: float
) -> tuple[list[float], list[SignedObservation]]:
    """POST /observe on the coordinator's own kept-alive client, parse, recover the signer."""
    async with NodeClient() as client:
        stamp = time.time_ns()
        answers: list[SignedObservation] = []
        signer = address_bytes(node.address)

        async def signed_round_trip(i: int) -> None:
            body = json.dumps({"request_id": f"base-{stamp}-{i}", "feed": "ETH/USD"}).encode()
            status, answer = await client.post(node.url + "/observe", body, 10)
            signed = SignedObservation.model_validate_json(answer)
            assert status == 200 and observation_signer(signed) == signer
            answers.append(signed)

        return await measure(signed_round_trip, seconds), answers


def node_trip_cpu(node: NodeSpec, pid: int, seconds: float) -> float:
    """CPU ms one baseline round trip costs the node: parse a request, make and sign an answer."""
    before = process_cpu(pid)
    trips = len(asyncio.run(bench_baseline(node, seconds))[0]) + 5  # measure() warms up with 5
    return (process_cpu(pid) - before) * 1000 / trips


def recovery_cpu(signed: list[SignedObservation]) -> float:
    """CPU ms of one observation signature recovery, as a signer makes it (``observation_signer``)."""
    started = time.process_time()
    for item in signed:
        observation_signer(item)
    return (time.process_time() - started) * 1000 / len(signed)


def protocol_floor(n: int, trip: float, recovery: float, cores: int) -> float:
    """The least wall time (ms) a round's own work takes on ``cores``: a lower bound.

    Each of the 2f+1 observations and f+1 signatures costs its node at least
    what one baseline round trip costs a node (``trip``: parse a request, make
    and sign an answer) and the coordinator one signature check; each of the
    f+1 signers also recovers the other 2f observations. Not counted: the
    coordinator's HTTP, the echo, building the report, any waiting; the
    overlap is taken as perfect.
    """
    f = (n - 1) // 3
    quorum, signers = 2 * f + 1, f + 1
    return ((quorum + signers) * (trip + recovery) + signers * (quorum - 1) * recovery) / cores


async def bench_baseline_httpx(node: NodeSpec, seconds: float) -> list[float]:
    """The same round trip on httpx, the usual Python client, for reference."""
    async with httpx.AsyncClient(timeout=10) as client:
        stamp = time.time_ns()

        async def signed_round_trip(i: int) -> None:
            answer = await client.post(
                node.url + "/observe", json={"request_id": f"hx-{stamp}-{i}", "feed": "ETH/USD"}
            )
            signed = SignedObservation.model_validate(answer.json())
            assert observation_signer(signed) == address_bytes(node.address)

        return await measure(signed_round_trip, seconds)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,7,10,16,31")
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    baseline: list[float] = []
    reference: list[float] = []
    trip = recovery = 0.0
    load_before = os.getloadavg()[0]
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"vouch-bench-{n}-") as tmp:
            home = Path(tmp)
            don = make_don(n, home)
            t0 = time.perf_counter()
            supervisor = start(don, home)
            boot = time.perf_counter() - t0
            try:
                if not baseline:
                    baseline, answers = asyncio.run(bench_baseline(don.nodes[0], args.seconds))
                    trip = node_trip_cpu(don.nodes[0], supervisor.pids()["node-1"], args.seconds)
                    recovery = recovery_cpu(answers)
                    reference = asyncio.run(bench_baseline_httpx(don.nodes[0], args.seconds))
                lat = asyncio.run(bench_rounds(don, args.seconds))
                quiet = asyncio.run(
                    bench_rounds(don.model_copy(update={"echo": False}), args.seconds)
                )
                cpu = cpu_per_round(don, supervisor, args.seconds)
            finally:
                supervisor.stop()
        rows.append(
            (
                n,
                don.f,
                len(lat),
                len(lat) / sum(lat),
                pct(lat, 0.5),
                pct(lat, 0.95),
                boot,
                pct(quiet, 0.5),
                cpu,
            )
        )
        print(f"n={n}: {len(lat)} rounds, p50 {pct(lat, 0.5):.2f} ms", file=sys.stderr)
    base50 = pct(baseline, 0.5)
    print(
        f"\nbaseline: one signed HTTP round trip (POST /observe + ecrecover), kept-alive: "
        f"p50 {base50:.2f} ms, p95 {pct(baseline, 0.95):.2f} ms, {len(baseline)} samples; "
        f"on httpx: p50 {pct(reference, 0.5):.2f} ms\n"
        f"{os.cpu_count()} cores, load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after\n"
    )
    cores = os.cpu_count() or 1
    print(
        "| n | f | rounds | rounds/s | p50 ms | p95 ms | p50 / baseline "
        "| p50 ms, no echo | no echo / baseline | CPU ms/round coordinator + nodes "
        f"| CPU floor on {cores} cores | start-up s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, f, count, rate, p50, p95, boot, quiet50, (mine, nodes) in rows:
        print(
            f"| {n} | {f} | {count} | {rate:.1f} | {p50:.2f} | {p95:.2f} | {p50 / base50:.2f}x "
            f"| {quiet50:.2f} | {quiet50 / base50:.2f}x | {mine:.2f} + {nodes:.2f} "
            f"| {(mine + nodes) / cores:.2f} ms | {boot:.1f} |"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(
            f"\nn grew {last[0] / first[0]:.1f}x, p50 round latency grew {last[4] / first[4]:.1f}x"
        )
    print(
        f"\nprotocol floor: the least wall time of a round's own work on {cores} cores (each "
        f"observation and signature at least one baseline round trip's node CPU, "
        f"{trip * 1000:.0f} us, plus one check; each signer's 2f recoveries, "
        f"{recovery * 1000:.1f} us each; no coordinator HTTP, no echo, perfect overlap):"
    )
    for row in rows:
        floor = protocol_floor(row[0], trip, recovery, cores)
        print(f"  n={row[0]}: {floor:.2f} ms = {floor / base50:.2f}x the baseline")
    if len(rows) > 1:
        first_n, last_n = rows[0][0], rows[-1][0]
        best_first = 3 * base50  # the most a first-size round may take to be within 3x
        least_growth = protocol_floor(last_n, trip, recovery, cores) / best_first
        print(
            f"a {first_n}-node round within 3x of the baseline takes at most {best_first:.2f} ms; "
            f"a {last_n}-node round takes at least its floor, so p50 would grow at least "
            f"{least_growth:.1f}x while n grows {last_n / first_n:.2f}x: on {cores} cores "
            + (
                "the two targets exclude each other"
                if least_growth >= last_n / first_n
                else "the two targets do not exclude each other"
            )
        )


if __name__ == "__main__":
    main()
