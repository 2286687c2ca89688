"""Run the DON's nodes as separate OS processes and watch their health."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from pydantic import BaseModel

from ._don import DonConfig, NodeSpec
from ._errors import CreError
from ._spawn import alive, spawn_detached, terminate


class NodeStatus(BaseModel):
    """What ``vouch don status`` shows for one node."""

    name: str
    address: str
    url: str
    pid: int | None
    healthy: bool
    last_round: str | None
    detail: str


class DonSupervisor:
    """Starts, stops and checks the node processes of one DON.

    Args:
        don: the DON config (already saved at ``don_file``).
        don_file: path the nodes read their config from.
        run_dir: where pid files and node logs go.
        launcher: the command that starts one node; ``--don FILE --node NAME`` is appended.
        env: extra environment for the node processes (e.g. the keystore password).
    """

    def __init__(
        self,
        don: DonConfig,
        don_file: Path,
        run_dir: Path,
        launcher: Sequence[str],
        env: dict[str, str] | None = None,
    ) -> None:
        self.don = don
        self.don_file = don_file
        self.run_dir = run_dir
        self.launcher = list(launcher)
        self.env = dict(env or {})

    @property
    def _pid_file(self) -> Path:
        return self.run_dir / "don.pids.json"

    def pids(self) -> dict[str, int]:
        """Node name to pid of the processes this supervisor started (alive or not)."""
        try:
            return {k: int(v) for k, v in json.loads(self._pid_file.read_text()).items()}
        except (OSError, ValueError):
            return {}

    def start(self, names: Sequence[str] | None = None) -> None:
        """Start the named nodes (all by default) detached, and wait until each answers /health.

        Raises:
            CreError: if a node does not become healthy (its log file is named).
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        pids = self.pids()
        chosen = [self.don.node(n) for n in names] if names else self.don.nodes
        for node in chosen:
            pids[node.name] = self._spawn(node)
        self._pid_file.write_text(json.dumps(pids))
        for node in chosen:
            self._wait_healthy(node, pids[node.name])

    def _spawn(self, node: NodeSpec) -> int:
        cmd = [*self.launcher, "--don", str(self.don_file), "--node", node.name]
        return spawn_detached(cmd, self.run_dir / f"{node.name}.log", {**os.environ, **self.env})

    def _wait_healthy(self, node: NodeSpec, pid: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if health(node) is not None:
                return
            if not alive(pid):
                break
            time.sleep(0.1)
        tail = _tail(self.run_dir / f"{node.name}.log")
        raise CreError(
            f"node {node.name} did not become healthy at {node.url}; its log ends:\n{tail}"
        )

    def stop(self, names: Sequence[str] | None = None) -> list[str]:
        """Stop the named nodes (all by default); return the names that were running."""
        pids = self.pids()
        stopped = []
        for name in list(names or pids):
            pid = pids.pop(name, None)
            if pid is not None and terminate(pid, timeout=5.0):
                stopped.append(name)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._pid_file.write_text(json.dumps(pids))
        return stopped

    def status(self) -> list[NodeStatus]:
        """Health of every configured node."""
        pids = self.pids()
        rows = []
        for node in self.don.nodes:
            answer = health(node)
            rows.append(
                NodeStatus(
                    name=node.name,
                    address=node.address,
                    url=node.url,
                    pid=pids.get(node.name),
                    healthy=answer is not None and answer.get("address") == node.address,
                    last_round=(answer or {}).get("last_round"),
                    detail="ok" if answer else "not answering",
                )
            )
        return rows

    def all_healthy(self) -> bool:
        """True when every node answers /health with its configured address."""
        return all(row.healthy for row in self.status())


def health(node: NodeSpec, timeout: float = 0.5) -> dict[str, object] | None:
    """The node's /health answer, or None if it does not answer."""
    try:
        response = httpx.get(node.url + "/health", timeout=timeout)
        return dict(response.json()) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


__all__ = ["DonSupervisor", "NodeStatus", "health"]
