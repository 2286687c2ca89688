"""Fault injection on the session DON through each node's /admin endpoint; reset after every test."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vouch.cre_adapters import DonConfig, DonSupervisor
from vouch.cre_adapters.evm import free_port

SetFault = Callable[..., None]


def admin_headers(don: DonConfig) -> dict[str, str]:
    assert don.admin_token_file is not None
    return {"Authorization": "Bearer " + don.admin_token_file.read_text().strip()}


def put_fault(don: DonConfig, name: str, **fault: Any) -> httpx.Response:
    node = don.node(name)
    return httpx.put(node.url + "/admin/fault", json=fault, headers=admin_headers(don), timeout=5)


@pytest.fixture
def fault(env: Any) -> Iterator[SetFault]:
    """``fault("node-4", mode="slow", delay=2)``; every node is honest again after the test."""
    touched: set[str] = set()

    def set_fault(name: str, **spec: Any) -> None:
        touched.add(name)
        answer = put_fault(env.don, name, **spec)
        assert answer.status_code == 200, answer.text

    try:
        yield set_fault
    finally:
        for name in touched:
            put_fault(env.don, name, mode="none")


@contextlib.contextmanager
def own_don(env: Any, home: Path, **changes: Any) -> Iterator[tuple[DonConfig, DonSupervisor]]:
    """The session DON's keys and forwarder in new node processes on new ports, with ``changes``.

    The forwarder's config digest does not cover ports, ages or faults, so these
    nodes' reports verify like the session DON's.
    """
    nodes = [node.model_copy(update={"port": free_port()}) for node in env.don.nodes]
    don = env.don.model_copy(update={"nodes": nodes, **changes})
    don = DonConfig.model_validate(don.model_dump())
    don.save(home / "don.json")
    supervisor = env.stack.supervisor(don, home / "don.json", home / "run")
    supervisor.start()
    try:
        yield don, supervisor
    finally:
        supervisor.stop()
