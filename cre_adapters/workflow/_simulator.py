"""A DON of in-process workflow nodes with fresh keys: for a project's own tests and dry runs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from eth_account import Account

from .._don import DonConfig, NodeSpec
from .._signer import Signer
from ._engine import ExecutionResult, LocalLink, Target, WorkflowEngine
from ._node import WorkflowNode

NOBODY = "0x000000000000000000000000000000000000dEaD"


def local_don(
    n: int = 4, *, secrets: Mapping[str, str] | None = None, rpc_url: str | None = None
) -> tuple[DonConfig, list[LocalLink]]:
    """``n`` nodes in this process, each with a fresh key (f = (n-1)//3)."""
    accounts = [Account.create() for _ in range(n)]
    nodes = [
        NodeSpec(name=f"node-{i}", address=a.address, port=i, keystore=Path(f"sim-{i}"))
        for i, a in enumerate(accounts, start=1)
    ]
    don = DonConfig(f=(n - 1) // 3, chain_id=31337, forwarder=NOBODY, nodes=nodes)
    links = [
        LocalLink(WorkflowNode(don, s, Signer(bytes(a.key)), secrets=secrets, rpc_url=rpc_url))
        for s, a in zip(nodes, accounts, strict=True)
    ]
    return don, links


def simulate_module(
    module: Path | str,
    config: dict[str, Any] | None = None,
    *,
    event: dict[str, Any] | None = None,
    handler: str | None = None,
    secrets: Mapping[str, str] | None = None,
    rpc_url: str | None = None,
    limits: Literal["default", "cre"] = "default",
    nodes: int = 4,
) -> ExecutionResult:
    """One execution of ``module`` by ``nodes`` in-process nodes: no chain writes, no log."""
    don, links = local_don(nodes, secrets=secrets, rpc_url=rpc_url)
    target = Target(chain_id=don.chain_id, forwarder=NOBODY, owner=NOBODY, rpc_url=rpc_url)
    engine = WorkflowEngine(don, links, Path(module), target, config=config, limits=limits)
    return asyncio.run(engine.execute(handler, event))
