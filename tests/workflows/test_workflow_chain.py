"""Workflows as code on the real stack: 4 node processes, the forwarder, a user's receiver, the audit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env
from tests.workflows.helpers import http_server, price
from vouch._resources import toolchain as find_toolchain
from vouch.cre_adapters._wire import NodeClient
from vouch.cre_adapters.workflow import (
    ExecutionResult,
    GasLimitedDelivery,
    HttpLink,
    LimitExceeded,
    Target,
    WorkflowEngine,
    workflow_id,
)
from vouch.cre_adapters.workflow._loader import allow_workflow, module_sha256
from vouch.cre_adapters.workflow._project import compile_project
from vouch.verifier import AttestationLog, audit
from vouch.verifier.audit import Web3ChainReader

pytestmark = pytest.mark.integration

TEMPLATE = Path(__file__).parents[2] / "vouch" / "templates" / "data-feed" / "contracts"
MODULE = """
from vouch.cre_adapters.workflow import Runtime, Workflow, interval, median

workflow = Workflow("pricefeed")


@workflow.handler(interval(60))
def on_tick(rt: Runtime, event: dict) -> None:
    quote = rt.http.fetch(
        rt.config["url"] + "/price",
        parse=lambda r: {"price": r.json()["price"]},
        aggregate={"price": median(tolerance_bps=100)},
    )
    report = rt.report(["uint256"], [quote["price"]])
    rt.evm.write(report, receiver=rt.config["receiver"], gas_limit=400_000)
"""


def deploy_receiver(env: Env, tmp_path: Path, max_price: int) -> tuple[str, Any]:
    """The data-feed template's PriceReceiver, compiled from its own source, pinned to 'pricefeed'."""
    artifacts = compile_project(find_toolchain(), TEMPLATE, tmp_path.parent / "wf-cache")
    art = artifacts.get("PriceReceiver")
    owner = env.deployment.workflow.owner
    address, _ = env.writer.deploy(
        art.abi,
        art.bytecode,
        env.deployment.address("Forwarder"),
        owner,
        workflow_id(owner, "pricefeed"),
        max_price,
    )
    return address, env.w3.eth.contract(address=address, abi=art.abi)


def receiver_abi(env: Env, tmp_path: Path) -> list[dict[str, Any]]:
    return (
        compile_project(find_toolchain(), TEMPLATE, tmp_path.parent / "wf-cache")
        .get("PriceReceiver")
        .abi
    )


def run(env: Env, tmp_path: Path, log: AttestationLog, url: str, receiver: str) -> ExecutionResult:
    module = tmp_path / "pricefeed.py"
    module.write_text(MODULE)
    return run_module(env, tmp_path, log, url, receiver, module)


def run_module(
    env: Env, tmp_path: Path, log: AttestationLog, url: str, receiver: str, module: Path
) -> ExecutionResult:
    allow_workflow(env.don.nodes[0].keystore.parent.parent, module_sha256(module))
    target = Target(
        chain_id=env.deployment.chain_id,
        forwarder=env.deployment.address("Forwarder"),
        owner=env.deployment.workflow.owner,
        rpc_url=env.deployment.rpc_url,
    )
    delivery = GasLimitedDelivery(env.deployment, env.artifacts, env.writer, log)
    delivery.receiver_abi = receiver_abi(env, tmp_path)

    async def go() -> ExecutionResult:
        async with NodeClient() as client:
            links = [HttpLink(node, client, 10.0) for node in env.don.nodes]
            engine = WorkflowEngine(
                env.don,
                links,
                module,
                target,
                log=log,
                delivery=delivery,
                config={"url": url, "receiver": receiver},
            )
            return await engine.execute()

    return asyncio.run(go())


def findings(env: Env, log: AttestationLog) -> dict[tuple[int, str], tuple[str, str]]:
    report = audit(
        log, Web3ChainReader(env.w3), None, forwarder=env.deployment.address("Forwarder")
    )
    return {(f.seq, f.check): (f.status, f.detail) for f in report.results}


def test_four_nodes_deliver_to_a_users_receiver_and_the_audit_passes(
    evm: Env, tmp_path: Path, log: AttestationLog
) -> None:
    address, receiver = deploy_receiver(evm, tmp_path, max_price=10**12)
    with http_server(lambda seen, i: (200, price(3000_00000000), 0)) as server:
        result = run(evm, tmp_path, log, server.url, address)
    assert result.status == "delivered", result
    assert receiver.functions.price().call() == 3000_00000000
    kinds = [e.kind for e in log.entries()]
    assert kinds == ["trigger", "capability", "report", "submission"]
    found = findings(evm, log)
    failed = {k: v for k, v in found.items() if v[0] == "fail"}
    assert not failed, failed
    assert found[(2, "capability consensus")][0] == "ok"
    assert found[(3, "report contents")][0] == "ok"
    assert found[(4, "transaction")][0] == "ok"


def test_a_reverting_receiver_is_logged_and_audited_as_a_failed_delivery(
    evm: Env, tmp_path: Path, log: AttestationLog
) -> None:
    address, receiver = deploy_receiver(evm, tmp_path, max_price=100)
    with http_server(lambda seen, i: (200, price(3000), 0)) as server:
        result = run(evm, tmp_path, log, server.url, address)
    assert result.status == "refused"
    assert result.submission is not None
    assert result.submission["error"]["name"] == "PriceOutOfBounds"
    assert result.submission["error"]["args"] == {"price": 3000, "maxPrice": 100}
    assert receiver.functions.price().call() == 0
    found = findings(evm, log)
    assert not {k: v for k, v in found.items() if v[0] == "fail"}
    # the audit matched the forwarder's ReportProcessed(result=false) to the logged refusal
    assert found[(4, "transaction")][0] == "ok"


def test_the_audit_refuses_a_report_whose_logged_values_are_not_the_payload(
    evm: Env, tmp_path: Path, log: AttestationLog
) -> None:
    address, _ = deploy_receiver(evm, tmp_path, max_price=10**12)
    with http_server(lambda seen, i: (200, price(1234), 0)) as server:
        run(evm, tmp_path, log, server.url, address)
    forged = AttestationLog(tmp_path / "forged.db")
    for entry in log.entries():
        payload = dict(entry.payload)
        if entry.kind == "report":
            payload["values"] = [9999]
        if entry.kind == "capability":
            payload["consensus"] = {"price": 9999}
        forged.append(bytes.fromhex(entry.execution_id[2:]), entry.kind, payload)
    found = findings(evm, forged)
    assert found[(3, "report contents")][0] == "fail"
    assert "not the logged values [9999]" in found[(3, "report contents")][1]
    assert found[(2, "capability consensus")][0] == "fail"
    assert "recomputed consensus {'price': 1234}" in found[(2, "capability consensus")][1]


SECRET_MODULE = """
from vouch.cre_adapters.workflow import Runtime, Workflow, interval, median

workflow = Workflow("pricefeed")


@workflow.handler(interval(60))
def on_tick(rt: Runtime, event: dict) -> None:
    quote = rt.http.fetch(
        rt.config["url"] + "/price?key={{secrets.CANARY_KEY}}",
        headers={"Authorization": "Bearer {{secrets.CANARY_KEY}}"},
        parse=lambda r: {"price": r.json()["price"]},
        aggregate={"price": median(tolerance_bps=100)},
    )
    report = rt.report(["uint256"], [quote["price"]])
    rt.evm.write(report, receiver=rt.config["receiver"], gas_limit=400_000)
"""


def test_a_node_secret_reaches_the_server_and_no_file_written(
    evm: Env, tmp_path: Path, log: AttestationLog
) -> None:
    """`vouch secrets set` stores; node processes read their own store; the canary is in no file."""
    from vouch.cre_adapters.workflow._secrets import set_secret

    canary = "cAnArY-5d1e0b7f-never-logged"
    for node, key in zip(evm.don.nodes, evm.node_keys(), strict=True):
        set_secret(node.keystore, key, "CANARY_KEY", canary)
    address, _ = deploy_receiver(evm, tmp_path, max_price=10**12)
    module = tmp_path / "pricefeed.py"
    try:
        with http_server(lambda seen, i: (200, price(77), 0)) as server:
            module.write_text(SECRET_MODULE)
            result = run_module(evm, tmp_path, log, server.url, address, module)
            seen = list(server.seen)
        assert result.status == "delivered"
        assert {s.headers["Authorization"] for s in seen} == {f"Bearer {canary}"}
        assert all(canary in s.path for s in seen)
        written = [
            *evm.settings.home.rglob("*"),
            *tmp_path.rglob("*"),
        ]
        files = [f for f in written if f.is_file()]
        assert any(f.suffix == ".log" or "log" in f.name for f in files)  # node logs are among them
        leaked = [f for f in files if canary.encode() in f.read_bytes()]
        assert not leaked, leaked
    finally:
        for node in evm.don.nodes:
            node.keystore.with_name(node.keystore.name + ".secrets").unlink(missing_ok=True)


EVM_MODULE = """
from vouch.cre_adapters.workflow import Runtime, Workflow, common_prefix, identical, interval

workflow = Workflow("reads")


@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> dict:
    version = rt.evm.call(rt.config["forwarder"], "typeAndVersion()(string)", block="latest",
                          aggregate=common_prefix())
    logs = rt.evm.logs(rt.config["forwarder"], from_block=0, to_block=rt.config["to_block"],
                       aggregate=identical())
    return {"version": version, "logs": len(logs), "first_block": logs[0]["block"] if logs else None}
"""


def test_evm_call_and_logs_on_every_node_against_the_chain(evm: Env, tmp_path: Path) -> None:
    from vouch.cre_adapters.workflow import simulate_module

    module = tmp_path / "reads.py"
    module.write_text(EVM_MODULE)
    forwarder = evm.deployment.address("Forwarder")
    head = evm.w3.eth.block_number
    expected = evm.w3.eth.get_logs({"address": forwarder, "fromBlock": 0, "toBlock": head})
    result = simulate_module(
        module, {"forwarder": forwarder, "to_block": head}, rpc_url=evm.deployment.rpc_url
    )
    got = result.outcome["result"]
    assert got["version"].startswith("vouch Forwarder")
    assert got["logs"] == len(expected) > 0
    assert got["first_block"] == expected[0]["blockNumber"]
    # the block range is a quota under --limits (151 blocks > 100)
    with pytest.raises(LimitExceeded, match="PerWorkflow.ChainRead.LogQueryBlockLimit"):
        simulate_module(
            module,
            {"forwarder": forwarder, "to_block": 150},
            rpc_url=evm.deployment.rpc_url,
            limits="cre",
        )


def test_node_processes_run_only_registered_modules(evm: Env, tmp_path: Path) -> None:
    """A module nobody registered with the DON (HOME/don/workflows.allow) is refused by every node."""
    from vouch.cre_adapters.workflow import WorkflowError

    module = tmp_path / "rogue.py"
    module.write_text(MODULE.replace('"pricefeed"', '"rogue"'))
    target = Target(
        evm.deployment.chain_id, evm.deployment.address("Forwarder"), evm.deployment.workflow.owner
    )

    async def go() -> None:
        async with NodeClient() as client:
            links = [HttpLink(node, client, 10.0) for node in evm.don.nodes]
            await WorkflowEngine(evm.don, links, module, target, config={}).execute()

    with pytest.raises(WorkflowError, match="is not registered with this DON") as info:
        asyncio.run(go())
    assert "0 of 4 nodes answered" in str(info.value)
