"""The audit against a chain: transactions read in JSON-RPC batches against one by one.

    .venv/bin/python scripts/bench/audit_chain.py [--runs 300] [--latency-ms 0 20]

Runs a feeds workflow ``--runs`` times through vouch in a throwaway home (its
own anvil, contracts and 4-node DON, one onchain report per run), then
audits the log against the chain with each submission's receipt and calldata
read in batches (``Web3ChainReader``) and one by one, directly and through a
local HTTP proxy (the test suite's ``tests/rpc_proxy.py``) that holds
every request for ``--latency-ms`` (a remote RPC's round trip, which is what
an auditor over one waits on). Prints the
requests sent and the seconds each took. The findings must be the same.
Not a test: numbers, not verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from web3 import HTTPProvider, Web3

from vouch.verifier import AttestationLog, Web3ChainReader, audit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.rpc_proxy import RpcProxy  # noqa: E402 - the test suite's stand-in for a remote RPC

SPEC = """name = "bench-feed"
[trigger]
kind = "interval"
every = 0.01
runs = {runs}
[[capabilities]]
feed = "ETH/USD"
[consensus]
mode = "median"
[target]
kind = "feeds"
"""


class OneByOne(Web3ChainReader):
    """The reader without fetching ahead: every transaction asked for alone."""

    def prefetch(self, tx_hashes: Sequence[str]) -> None:
        pass


class CountingProvider(HTTPProvider):
    """The HTTP provider, counting the HTTP requests it sends (a batch is one)."""

    requests = 0

    def make_request(self, method: Any, params: Any) -> Any:
        self.requests += 1
        return super().make_request(method, params)

    def make_batch_request(self, requests: Any) -> Any:
        self.requests += 1
        return super().make_batch_request(requests)


def timed(
    log: AttestationLog, url: str, kind: type[Web3ChainReader], contracts: dict[str, str]
) -> tuple[float, int, list[tuple[Any, ...]]]:
    """Seconds and HTTP requests of one audit of ``log`` against ``url``, and its findings."""
    provider = CountingProvider(url, request_kwargs={"timeout": 60})
    start = time.perf_counter()
    report = audit(
        log,
        kind(Web3(provider)),
        forwarder=contracts["Forwarder"],
        gate=contracts["SettlementGate"],
    )
    return time.perf_counter() - start, provider.requests, sorted(tuple(r) for r in report.results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 20.0])
    args = parser.parse_args()
    vouch = [str(Path(sys.executable).with_name("vouch"))]
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "VOUCH_HOME": home}
        spec = Path(home) / "feeds.toml"
        spec.write_text(SPEC.format(runs=args.runs))
        start = time.perf_counter()
        try:
            subprocess.run(
                [*vouch, "workflow", "run", str(spec)], env=env, check=True, capture_output=True
            )
            print(f"{args.runs} onchain reports made in {time.perf_counter() - start:.1f}s")
            manifest = json.loads(next((Path(home) / "deployments").glob("*.json")).read_text())
            log = AttestationLog(Path(home) / "attestations.db", readonly=True)
            print(f"\n{'':34} {'requests':>9} {'seconds':>9}")
            for latency in args.latency_ms:
                proxy = RpcProxy(manifest["rpc_url"], delay=latency / 1000) if latency else None
                url = proxy.url if proxy else manifest["rpc_url"]
                results = []
                for name, kind in (("batched", Web3ChainReader), ("one by one", OneByOne)):
                    seconds, requests, found = timed(log, url, kind, manifest["contracts"])
                    results.append(found)
                    label = f"{name}, {latency:g} ms per request"
                    print(f"{label:34} {requests:9,} {seconds:9.2f}")
                assert results[0] == results[1], "batched and one-by-one findings differ"
                if proxy:
                    proxy.close()
        finally:
            subprocess.run([*vouch, "down"], env=env, capture_output=True, check=False)


if __name__ == "__main__":
    main()
