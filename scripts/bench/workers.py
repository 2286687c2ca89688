"""Settlements per minute with 1, 2 and 4 workers sharing one PostgreSQL log and run store.

One chain (anvil), one deployment and one 4-node DON on this machine; a
PostgreSQL server started here from Debian's packages (fsync on). For each
worker count, ``--runs`` settlement runs are queued (``vouch._workers.submit``)
in a fresh database and that many worker processes take them by lease
(``Worker``), each settlement the whole flow: plan (offline model), escrow
(two party transactions), the approver's decision (signed, as a person's
would be; settlement is irreversible), a DON round, the report transaction, and
every step in the shared log. Throughput is counted from the first step
started to the last step finished (process start-up excluded). The baseline,
in the same run: one worker.

After each count: every run done, one TradeSettled per run, the log's chain
intact with contiguous seqs.

Workers hold a lease on their deployer key (one live worker per key and
chain: two on one key would collide on nonces), so each worker here sends from
its own funded keystore (``VOUCH_DEPLOYER_KEYSTORE`` per process); the demo's
trading parties derive from the deployment's party secret, not from the
worker's key, so any worker can finish another's escrow.

Usage: .venv/bin/python scripts/bench/workers.py [--runs 8] [--cache DIR]
(``--cache``: a compiled-contracts cache to copy, e.g. an existing home's cache/.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.pgserver import create_database, start_server, stop_server  # noqa: E402
from vouch import Stack, load_settings  # noqa: E402
from vouch.agents import open_checkpoints  # noqa: E402
from vouch.verifier import open_log  # noqa: E402

PASSWORD = "bench password, not a secret"
GOAL = "Sell 1.5 WETH for USDC between 2,500 and 3,500 USDC per WETH within 10 minutes"
WORKER = textwrap.dedent(
    """
    import sys
    from vouch import load_settings
    from vouch._flow import Services, sign_decision
    from vouch._workers import Worker

    settings = load_settings()

    def approve(executor, outcome):
        services = Services(settings)
        for action in outcome.pending:
            signed = sign_decision(services, outcome.run_id, action, True, "bench")
            executor.decide(outcome.run_id, action.key, True, "bench", by=signed["approver"])
        return True

    # each worker sends from its own deployer keystore (VOUCH_DEPLOYER_KEYSTORE)
    worker = Worker(settings, owner=sys.argv[1], ttl=30.0, on_pause=approve)
    for worked in worker.work(idle_exit=4.0, poll=0.2):
        if worked.outcome is None:  # lost its lease: another worker drives the run
            print(worked.error, flush=True)
            continue
        print(worked.outcome.run_id, worked.outcome.status, worked.outcome.reason, flush=True)
    """
)


def bring_up(home: Path, cache: Path | None) -> None:
    """Chain, contracts and DON for ``home`` (they keep running until ``tear_down``)."""
    if cache is not None and not (home / "cache").exists():
        shutil.copytree(cache, home / "cache")
    # the workers' policy (no approval threshold) is set here, by the deployer: a worker's
    # own key holds no admin role on the gate
    stack = Stack(load_settings(home=home, approval_threshold=0))
    chain = stack.chain_up()
    deployment, _ = stack.deploy(chain, stack.artifacts())
    stack.don_up(deployment)


def worker_keys(home: Path, folder: Path, count: int) -> list[Path]:
    """``count`` fresh keystores, each funded with 100 ETH from anvil's first dev account."""
    from eth_account import Account

    w3 = Stack(load_settings(home=home)).require_chain().web3()
    funder = w3.eth.accounts[0]
    paths = []
    for i in range(count):
        account = Account.create()
        path = folder / f"worker-{i}.json"
        keystore = Account.encrypt(account.key, PASSWORD, kdf="scrypt", iterations=2**10)
        path.write_text(json.dumps(keystore))
        tx = w3.eth.send_transaction({"from": funder, "to": account.address, "value": 10**20})
        w3.eth.wait_for_transaction_receipt(tx)
        paths.append(path)
    return paths


def tear_down(home: Path) -> None:
    stack = Stack(load_settings(home=home))
    stack.don_down()
    stack.chain_down()


def measure(
    env: dict[str, str], url: str, workers: int, runs: int, script: Path, keys: list[Path]
) -> float:
    """Settlements per minute for ``workers`` processes over ``runs`` queued runs."""
    from vouch._workers import submit

    settings = load_settings(home=Path(env["VOUCH_HOME"]), runs_url=url, log_url=url)
    ids = [submit(settings, GOAL, f"bench-{workers}-{i}").run_id for i in range(runs)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), f"w{i}"],
            env={**env, "VOUCH_DEPLOYER_KEYSTORE": str(keys[i])},
            text=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("a worker failed")
    store = open_checkpoints(url)
    records = [store.load_run(run_id) for run_id in ids]
    bad = [(r.run_id, r.status, r.reason) for r in records if r.status != "done"]
    if bad:
        raise SystemExit(f"runs not done: {bad}")
    steps = [s for run_id in ids for s in store.load_steps(run_id).values() if s.started_at]
    span = max(s.finished_at for s in steps) - min(s.started_at for s in steps)
    with open_log(url, readonly=True) as log:
        settled = [e for e in log.entries() if e.kind == "submission"]
        assert log.verify_chain() == [] and len(settled) == runs
    return runs / span * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="settlements per worker count")
    parser.add_argument("--cache", type=Path, default=None, help="compiled contracts to copy")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vouch-bench-workers-"))
    home = tmp / "home"
    script = tmp / "worker.py"
    script.write_text(WORKER)
    os.environ["VOUCH_KEYSTORE_PASSWORD"] = PASSWORD
    server = start_server(Path(tempfile.mkdtemp(prefix="vouch-bench-pg-")), fsync=True)
    try:
        bring_up(home, args.cache)
        keys = worker_keys(home, tmp, 4)
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
        env = {**os.environ, "VOUCH_HOME": str(home), "VOUCH_APPROVAL_THRESHOLD": "0"}
        rates = {}
        for workers in (1, 2, 4):
            url = create_database(server)
            rates[workers] = measure(
                {**env, "VOUCH_LOG_URL": url, "VOUCH_RUNS_URL": url},
                url,
                workers,
                args.runs,
                script,
                keys,
            )
            print(f"{workers} workers: {rates[workers]:.1f} settlements/min", flush=True)
        print("| workers | settlements/min | vs 1 worker |")
        print("|---:|---:|---:|")
        for workers, rate in rates.items():
            print(f"| {workers} | {rate:.1f} | {rate / rates[1]:.2f}x |")
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        tear_down(home)
        stop_server(server)


if __name__ == "__main__":
    time.tzset()
    main()
