"""Run the DON's nodes as separate OS processes and watch their health."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from ._don import DonConfig, NodeSpec
from ._errors import ConfigError, CreError, NodeError
from ._faults import FaultSpec
from ._spawn import alive, spawn_detached, terminate_all


class NodeStatus(BaseModel):
    """What ``vouch don status`` shows for one node."""

    name: str
    address: str
    url: str
    pid: int | None
    healthy: bool
    last_round: str | None
    detail: str
    rounds: int = 0
    last_round_at: float | None = None
    fault: str = "none"


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

    @property
    def _faults_file(self) -> Path:
        return self.run_dir / "faults.json"

    def running(self) -> list[str]:
        """Names of this DON's nodes whose processes (started here) are alive."""
        known = {node.name for node in self.don.nodes}
        return [name for name, pid in self.pids().items() if name in known and alive(pid)]

    def runtime_faults(self) -> dict[str, FaultSpec]:
        """The faults set at runtime (``record_fault``) and still in force, by node name."""
        try:
            data = json.loads(self._faults_file.read_text())
            return {str(k): FaultSpec.model_validate(v) for k, v in data.items()}
        except (OSError, ValueError):
            return {}

    def record_fault(self, name: str, fault: FaultSpec) -> None:
        """Remember ``fault`` of node ``name`` (``none`` forgets it): it outlives the process."""
        faults = self.runtime_faults()
        if fault.mode == "none":
            faults.pop(name, None)
        else:
            faults[name] = fault
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data = {k: v.model_dump() for k, v in faults.items()}
        self._faults_file.write_text(json.dumps(data, indent=2) + "\n")

    def forget_faults(self) -> None:
        """Drop every recorded runtime fault (the DON they were set on is gone)."""
        self._faults_file.unlink(missing_ok=True)

    def fault_of(self, node: NodeSpec) -> FaultSpec:
        """The fault in force: the node's own word (admin), else the recorded one, else config."""
        answer = admin_fault(self.don, node.name)
        if answer is not None:
            return answer
        return self.runtime_faults().get(node.name, node.fault)

    def start(self, names: Sequence[str] | None = None) -> None:
        """Start the named nodes (all by default) detached, and wait until each answers /health.

        A node whose DON config says ``fault: down`` is not started: that is what down means.

        Raises:
            CreError: if a node does not become healthy (its log file is named).
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        pids = self.pids()
        chosen = [self.don.node(n) for n in names] if names else self.don.nodes
        chosen = [node for node in chosen if node.fault.mode != "down"]
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
            if health(node, don=self.don) is not None:
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
        chosen = {name: pids.pop(name) for name in list(names or pids) if name in pids}
        running = set(terminate_all(list(chosen.values()), timeout=5.0))
        stopped = [name for name, pid in chosen.items() if pid in running]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._pid_file.write_text(json.dumps(pids))
        return stopped

    def status(self) -> list[NodeStatus]:
        """Health of every configured node."""
        pids = self.pids()
        rows = []
        for node in self.don.nodes:
            answer = health(node, don=self.don)
            fault = None if answer else self.fault_of(node)
            rows.append(_row(node, answer, pids.get(node.name), fault))
        return rows

    def all_healthy(self) -> bool:
        """True when every node answers /health with its configured address.

        A node that misses the quick check gets a second, patient one: on a
        loaded machine a slow /health must not get a healthy DON restarted.
        """
        return all(
            row.healthy
            or (health(self.don.node(row.name), timeout=3.0, don=self.don) or {}).get("address")
            == row.address
            for row in self.status()
        )


def _row(
    node: NodeSpec, answer: dict[str, Any] | None, pid: int | None, fault: FaultSpec | None = None
) -> NodeStatus:
    answer = answer or {}
    healthy = answer.get("address") == node.address
    mode = str(answer.get("fault") or (fault or node.fault).mode)
    if healthy:
        detail = "ok"
    elif answer:
        detail = f"answers as {answer.get('address')}, configured {node.address}"
    elif node.fault.mode == "down":
        detail = "down (DON config)"
    elif fault is not None and fault.mode == "down":
        detail = (
            "down (killed, fault)"
            if fault.kill or pid is None or not alive(pid)
            else "down (fault)"
        )
    elif pid is not None and not alive(pid):
        detail = "not running (process exited)"
    else:
        detail = "not answering"
    return NodeStatus(
        name=node.name,
        address=node.address,
        url=node.url,
        pid=pid,
        healthy=healthy,
        last_round=answer.get("last_round"),
        detail=detail,
        rounds=int(answer.get("rounds") or 0),
        last_round_at=answer.get("last_round_at"),
        fault=mode,
    )


def tls_options(don: DonConfig | None, node: NodeSpec) -> dict[str, Any]:
    """The httpx options for the owner's request to ``node``: its pinned certificate, ours shown."""
    if don is None or node.tls_cert is None:
        return {}
    from ._tls import client_context

    return {"verify": client_context(node.tls_cert, don.owner_cert, don.owner_key)}


def health(
    node: NodeSpec, timeout: float = 0.5, don: DonConfig | None = None
) -> dict[str, Any] | None:
    """The node's /health answer, or None if it does not answer (a TLS node: give its ``don``)."""
    try:
        response = httpx.get(node.url + "/health", timeout=timeout, **tls_options(don, node))
        return dict(response.json()) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def admin_fault(don: DonConfig, name: str, timeout: float = 0.5) -> FaultSpec | None:
    """The fault node ``name`` says it has (its loopback /admin), or None if it cannot say."""
    from ._node_app import read_admin_token

    token = read_admin_token(don.admin_token_file)
    if token is None:
        return None
    try:
        answer = httpx.get(
            don.node(name).url + "/admin/fault",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            **tls_options(don, don.node(name)),
        )
        return FaultSpec.model_validate(answer.json()) if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def set_fault(don: DonConfig, name: str, fault: FaultSpec, timeout: float = 5.0) -> FaultSpec:
    """Switch node ``name`` to ``fault`` at runtime through its loopback /admin endpoint.

    Raises:
        ConfigError: the DON config names no admin token file, or it cannot be read.
        NodeError: the node refused or did not answer.
    """
    from ._node_app import read_admin_token

    token = read_admin_token(don.admin_token_file)
    if token is None:
        raise ConfigError(f"cannot read the admin token (admin_token_file={don.admin_token_file})")
    node = don.node(name)
    try:
        answer = httpx.put(
            node.url + "/admin/fault",
            json=fault.model_dump(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            **tls_options(don, node),
        )
    except httpx.HTTPError as exc:
        raise NodeError(name, f"admin endpoint unreachable at {node.url}: {exc}") from None
    if answer.status_code != 200:
        raise NodeError(name, f"admin refused ({answer.status_code}): {answer.text[:300]}")
    return FaultSpec.model_validate(answer.json())


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


__all__ = ["DonSupervisor", "NodeStatus", "admin_fault", "health", "set_fault"]
