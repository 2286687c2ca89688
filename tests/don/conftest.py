"""Fault injection on the session DON through each node's /admin endpoint; reset after every test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cre_adapters import DonConfig

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
