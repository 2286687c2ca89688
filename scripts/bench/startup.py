"""Start-up: the CLI's start time, a node's import cost, and `vouch don up` at n=4 and n=31.

Measured, each as the median of --repeat runs in fresh processes:

- `vouch --help`, `vouch demo --help`, `vouch audit --help`, `vouch runs list` (a command
  that reads no chain) and `vouch chain status` (no chain: it exits 2 at once,
  so the figure is the command's start-up plus reading its settings): wall and CPU seconds;
- baseline: `python -c pass` (the interpreter alone) in the same run;
- a node process's imports: `python -c "import <entry>"` CPU seconds, for the lean node entry
  (`vouch.cre_adapters.node`, when present) and the CLI's `node run` path;
- `vouch don up --nodes N --f F` wall time until every node answers its health check, at
  n=4 (f=1) and n=31 (f=10), cold (keystores made on first use: scrypt per key) and warm
  (the same DON started again). A fresh home in a temp dir, its own anvil.

Usage: .venv/bin/python scripts/bench/startup.py [--repeat 5] [--sizes 4,31] [--no-don]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VOUCH = str(BIN / "vouch")


def _timed(cmd: list[str], env: dict[str, str], timeout: float = 900) -> tuple[float, float, int]:
    """(wall s, CPU s of the child, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 2):  # 2: `chain status` with no chain, as intended
        tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-3:]
        print(f"  ({' '.join(cmd[1:])} exited {done.returncode}: {' | '.join(tail)})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def _median(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, float, int]:
    runs = [_timed(cmd, env) for _ in range(repeat)]
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        runs[-1][2],
    )


def cli(env: dict[str, str], repeat: int) -> None:
    print(f"\nCLI start ({repeat} runs each, median; load average {os.getloadavg()[0]:.2f})")
    print(f"{'command':<40} {'wall s':>8} {'CPU s':>8} {'exit':>5}")
    rows = [
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
        ("vouch --help", [VOUCH, "--help"]),
        ("vouch demo --help", [VOUCH, "demo", "--help"]),
        ("vouch audit --help", [VOUCH, "audit", "--help"]),
        ("vouch runs list (reads no chain)", [VOUCH, "runs", "list"]),
        ("vouch chain status (no chain)", [VOUCH, "chain", "status"]),
        ("python -c 'import vouch.cli'", [sys.executable, "-c", "import vouch.cli"]),
    ]
    for name, cmd in rows:
        wall, cpu, code = _median(cmd, env, repeat)
        print(f"{name:<40} {wall:>8.3f} {cpu:>8.3f} {code:>5}")


def node_imports(env: dict[str, str], repeat: int) -> None:
    print("\nA node process's imports (CPU s, median)")
    entries = {
        "CLI `node run` path": "import vouch.cli.don\n"
        "from vouch.cre_adapters import DonConfig, load_key, serve\n"
        "from vouch._stack import key_password\nfrom vouch._settings import load_settings",
    }
    if (ROOT / "cre_adapters" / "node.py").is_file():
        entries["python -m vouch.cre_adapters.node"] = (
            "import vouch.cre_adapters.node, vouch.cre_adapters._node_app"
        )
    for name, code in entries.items():
        wall, cpu, status = _median([sys.executable, "-c", code], env, repeat)
        print(f"{name:<40} wall {wall:>6.3f}  CPU {cpu:>6.3f}  exit {status}")


def don(env: dict[str, str], sizes: list[int]) -> None:
    print("\n`vouch don up` until every node answers (wall s)")
    with tempfile.TemporaryDirectory() as home:
        env = {**env, "VOUCH_HOME": home}
        wall, _, code = _timed([VOUCH, "chain", "up"], env)
        print(f"chain up: {wall:.2f} s (exit {code})")
        wall, _, code = _timed([VOUCH, "deploy"], env)
        print(f"deploy: {wall:.2f} s (exit {code})")
        try:
            for n in sizes:
                f = (n - 1) // 3
                up = [VOUCH, "don", "up", "--nodes", str(n), "--f", str(f)]
                for label in ("cold", "warm"):
                    load = os.getloadavg()[0]
                    wall, cpu, code = _timed(up, env)
                    print(
                        f"n={n:<3} f={f:<3} {label}: {wall:7.2f} s  (CLI CPU {cpu:.2f} s, "
                        f"exit {code}, load {load:.2f})"
                    )
                    _timed([VOUCH, "don", "down"], env)
        finally:
            _timed([VOUCH, "down"], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="4,31")
    parser.add_argument("--no-don", action="store_true", help="skip the `vouch don up` part")
    args = parser.parse_args()
    env = {
        **os.environ,
        "VOUCH_KEYSTORE_PASSWORD": os.environ.get("VOUCH_KEYSTORE_PASSWORD", "bench"),
        "VOUCH_HOME": tempfile.mkdtemp(prefix="vouch-startup-"),
    }
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    cli(env, args.repeat)
    node_imports(env, args.repeat)
    if not args.no_don:
        don(env, [int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
