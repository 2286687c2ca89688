"""Start and stop a local anvil chain from the pinned npm package."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .._errors import AnvilError
from .._spawn import exit_code, spawn_detached, terminate
from ._toolchain import Toolchain

# The well-known development keys anvil derives from its default mnemonic
# ("test test ... junk"). Public knowledge: only ever valid on a local anvil.
ANVIL_DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_ready(url: str, timeout: float = 1.0) -> int | None:
    """Return the chain id if ``url`` answers JSON-RPC, else None."""
    try:
        response = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout=timeout,
        )
        return int(response.json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


@dataclass
class AnvilProcess:
    """A running anvil: its process id, URL and chain id."""

    pid: int
    url: str
    chain_id: int

    def stop(self, timeout: float = 10.0) -> None:
        """Stop anvil (SIGTERM, so it dumps ``--state`` if it has one), then wait for it."""
        terminate(self.pid, timeout)


def start_anvil(
    toolchain: Toolchain,
    *,
    chain_id: int = 31337,
    port: int | None = None,
    state_file: Path | None = None,
    log_file: Path | None = None,
    ready_timeout: float = 30.0,
) -> AnvilProcess:
    """Start anvil on loopback, in its own session (it outlives this process), and wait until it answers.

    Args:
        toolchain: where the anvil binary lives.
        chain_id: the chain id anvil reports.
        port: the port; a free one when None.
        state_file: load state from and dump it to this file (survives restarts).
        log_file: where anvil's output goes (discarded when None).
        ready_timeout: seconds to wait for the RPC to answer.

    Raises:
        AnvilError: if anvil exits or does not answer in time.
    """
    port = port or free_port()
    cmd = [
        str(toolchain.anvil),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
    ]
    if state_file is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        cmd += ["--state", str(state_file), "--state-interval", "1", "--preserve-historical-states"]
    pid = spawn_detached(cmd, log_file)
    url = f"http://127.0.0.1:{port}"
    try:
        return AnvilProcess(pid, url, _wait_ready(pid, url, ready_timeout, log_file))
    except AnvilError:
        terminate(pid, timeout=2)
        raise


def _wait_ready(pid: int, url: str, timeout: float, log: Path | None) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = exit_code(pid)
        if code is not None:
            hint = f"; see {log}" if log else ""
            raise AnvilError(f"anvil exited with code {code} before answering{hint}")
        chain_id = rpc_ready(url, timeout=0.5)
        if chain_id is not None:
            return chain_id
        time.sleep(0.1)
    raise AnvilError(f"anvil did not answer at {url} within {timeout}s")
