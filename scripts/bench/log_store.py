"""Attestation log append throughput: PostgreSQL against SQLite, 1 and 4 appending processes.

Each process appends ``--entries`` entries (payloads like a settlement's
``observations`` entry, ~1 KB), one committed transaction per entry, then the
same in batches of 10 (``append_many``). SQLite is the embedded default (WAL,
synchronous=FULL, one file; several processes take its write lock in turn);
PostgreSQL is a throwaway server started here from Debian's packages (fsync
on, as a production server; unix socket, so no network in the figure), the
chain serialized by the row lock on the log's head. The baseline, measured in
the same run: SQLite, one process, one entry per transaction.

After each run the whole chain is checked (contiguous seqs, every link and hash).

Usage: .venv/bin/python scripts/bench/log_store.py [--entries 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.pgserver import create_database, start_server, stop_server  # noqa: E402
from vouch.verifier import open_log  # noqa: E402

APPENDER = """
import sys, time
from vouch.verifier import open_log
location, worker, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
payload = {"feed": "ETH/USD", "observations": [{"node": f"node-{i}", "value": 296163392677 + i,
           "signature": "0x" + "ab" * 65} for i in range(4)]}
log = open_log(location)
ready = float(sys.stdin.readline())  # all start together
while time.time() < ready:
    time.sleep(0.001)
for i in range(0, count, batch):
    log.append_many([("0x" + worker * 32, "observations", {**payload, "i": i + j}) for j in range(batch)])
log.close()
"""


def run(location: str, processes: int, entries: int, batch: int) -> float:
    """Entries per second for ``processes`` appenders of ``entries`` each (after start-up)."""
    open_log(location).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, location, f"{w:02x}", str(entries), str(batch)],
            stdin=subprocess.PIPE,
            text=True,
        )
        for w in range(processes)
    ]
    time.sleep(4.0)  # imports and connections
    start = time.time() + 0.5
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start}\n")
        proc.stdin.close()
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("an appender failed")
    elapsed = time.time() - start
    with open_log(location, readonly=True) as log:
        assert log.last_seq() == processes * entries and log.verify_chain() == []
        rows = log.rows()
    first, last = min(r[4] for r in rows), max(r[4] for r in rows)
    span = max((last - first) / 1000, 1e-3)  # created_at: first to last commit
    return processes * entries / min(span, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000, help="entries per process")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vouch-bench-log-"))
    server = start_server(Path(tempfile.mkdtemp(prefix="vouch-bench-pg-")), fsync=True)
    try:
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
        rows = []
        for batch in (1, 10):
            for processes in (1, 4):
                sqlite = str(tmp / f"log-{batch}-{processes}.db")
                rows.append(
                    ("SQLite", batch, processes, run(sqlite, processes, args.entries, batch))
                )
                pg = create_database(server)
                rows.append(
                    ("PostgreSQL", batch, processes, run(pg, processes, args.entries, batch))
                )
        base = rows[0][3]
        print(
            "| store | entries per transaction | processes | entries/s | vs SQLite, 1 process, 1 per tx |"
        )
        print("|---|---:|---:|---:|---:|")
        for store, batch, processes, rate in rows:
            print(f"| {store} | {batch} | {processes} | {rate:,.0f} | {rate / base:.2f}x |")
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
