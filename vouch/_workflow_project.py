"""Running a workflow module: ``vouch workflow simulate`` (one process) and ``vouch workflow run``.

A project (``vouch init``) is a folder with ``vouch.toml``, a workflow module
and its receiver contract(s)::

    [workflow]
    module = "workflow.py"
    receiver = "PriceReceiver"                       # contracts/PriceReceiver.sol, deployed by vouch
    receiver_args = ["$forwarder", "$owner", "$workflow_id", 1000000000000000]
    [workflow.config]                                # the callback's rt.config
    receiver = "$receiver"

or ``receiver_address`` (+ ``receiver_abi``, a JSON ABI file) for a receiver
that is already deployed. ``$forwarder``, ``$owner``, ``$workflow_id`` and
``$receiver`` are filled in from the deployment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import VouchError

if TYPE_CHECKING:
    from rich.console import Console

    from vouch.cre_adapters import DonConfig
    from vouch.cre_adapters.evm import Deployment
    from vouch.cre_adapters.workflow import ExecutionResult, Target, WorkflowEngine

    from ._settings import VouchSettings
    from ._stack import Chain, Stack

PLACEHOLDER_RECEIVER = "0x000000000000000000000000000000000000dEaD"
SECRET_ENV = "VOUCH_SECRET_"


class WorkflowProject(BaseModel):
    """``[workflow]`` in vouch.toml: the module, its receiver and its config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    module: Path = Field(default=Path("workflow.py"), description="the workflow module")
    handler: str | None = Field(default=None, description="the handler to run (None: the only one)")
    contracts: Path = Field(default=Path("contracts"), description="the project's Solidity files")
    receiver: str | None = Field(default=None, description="receiver contract vouch deploys")
    receiver_args: list[Any] = Field(
        default_factory=lambda: ["$forwarder", "$owner", "$workflow_id"],
        description="its constructor arguments ($forwarder, $owner, $workflow_id filled in)",
    )
    receiver_address: str | None = Field(default=None, description="an already deployed receiver")
    receiver_abi: Path | None = Field(default=None, description="its ABI (JSON) for errors")
    config: dict[str, Any] = Field(default_factory=dict, description="the callback's rt.config")


@dataclass
class Prepared:
    """A module ready to run: its project, the receiver (if any) and the callback config."""

    project: WorkflowProject
    module: Path
    receiver: str | None
    receiver_abi: list[dict[str, Any]]
    config: dict[str, Any]


def project_for(settings: VouchSettings, module: Path) -> WorkflowProject:
    """The vouch.toml project when ``module`` is its module, else a bare one for ``module``."""
    if not module.exists():
        raise VouchError(f"{module}: no such workflow module")
    project = settings.workflow
    if project is not None and project.module.resolve() == module.resolve():
        return project
    return WorkflowProject(module=module, receiver_args=[])


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def _workflow_name(module: Path) -> str:
    from vouch.cre_adapters.workflow import load_workflow

    return load_workflow(module)[0].name


def register_workflow(settings: VouchSettings, chain_id: int, name: str, owner: str) -> None:
    """Add workflow ``name`` of ``owner`` to the deployment manifest's ``workflows`` (audit pins)."""
    from vouch.cre_adapters.workflow import workflow_id

    path = settings.deployment_path(chain_id)
    data = json.loads(path.read_text())
    entry = {"id": "0x" + workflow_id(owner, name).hex(), "owner": owner, "name": name}
    listed = data.setdefault("workflows", [])
    if entry not in listed:
        listed.append(entry)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)


def deploy_receiver(
    stack: Stack, chain: Chain, deployment: Deployment, project: WorkflowProject, name: str
) -> tuple[str | None, list[dict[str, Any]]]:
    """The project's receiver address and ABI: deployed once per (bytecode, args), then reused."""
    from vouch.cre_adapters.workflow import workflow_id
    from vouch.cre_adapters.workflow._project import compile_project

    from ._resources import toolchain as find_toolchain

    register_workflow(stack.settings, chain.chain_id, name, deployment.workflow.owner)
    abi: list[dict[str, Any]] = []
    if project.receiver_abi is not None:
        abi = json.loads(project.receiver_abi.read_text())
    if project.receiver_address is not None:
        return project.receiver_address, abi
    if project.receiver is None:
        return None, abi
    owner = deployment.workflow.owner
    names = {
        **{f"${k}": v for k, v in deployment.contracts.items()},
        "$forwarder": deployment.address("Forwarder"),
        "$owner": owner,
        "$workflow_id": "0x" + workflow_id(owner, name).hex(),
    }
    artifacts = compile_project(
        find_toolchain(stack.settings), project.contracts.resolve(), stack.settings.home / "cache"
    )
    art = artifacts.get(project.receiver)
    args = _fill(project.receiver_args, names)
    args = [bytes.fromhex(a[2:]) if isinstance(a, str) and len(a) == 66 else a for a in args]
    key = hashlib.sha256(
        json.dumps([art.bytecode, repr(args), deployment.address("Forwarder")]).encode()
    ).hexdigest()[:16]
    record = stack.settings.home / "workflows" / f"{project.receiver}-{chain.chain_id}.json"
    try:
        saved = json.loads(record.read_text())
        if saved.get("key") == key and chain.web3().eth.get_code(saved["address"]):
            return str(saved["address"]), art.abi
    except (OSError, ValueError, KeyError):
        pass
    writer = stack.writer(chain, stack.artifacts())
    address, _ = writer.deploy(art.abi, art.bytecode, *args)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"key": key, "address": address, "contract": project.receiver}))
    return address, art.abi


def _event_printer(console: Console) -> Callable[[str, dict[str, Any]], None]:
    def say(kind: str, data: dict[str, Any]) -> None:
        console.print(f"{kind}: {json.dumps(data, default=str)}", markup=False, highlight=False)

    return say


def _env_secrets() -> dict[str, str]:
    return {
        k.removeprefix(SECRET_ENV): v for k, v in os.environ.items() if k.startswith(SECRET_ENV)
    }


def simulate(
    settings: VouchSettings,
    module: Path,
    console: Console,
    *,
    broadcast: bool = False,
    limits: Literal["default", "cre"] = "default",
    handler: str | None = None,
    event: dict[str, Any] | None = None,
) -> ExecutionResult:
    """Run one execution of ``module`` in this process with a DON of in-process nodes.

    Without ``broadcast``: fresh node keys, no chain writes, no log; secrets
    come from ``VOUCH_SECRET_<NAME>`` variables. With ``broadcast``: the
    home's chain, deployment and node keys (their secret stores), the report
    sent through the real forwarder, every entry in the home's log.
    """
    from eth_account import Account

    from vouch.cre_adapters import DonConfig
    from vouch.cre_adapters._don import NodeSpec
    from vouch.cre_adapters._signer import Signer
    from vouch.cre_adapters.workflow import LocalLink, Target, WorkflowNode
    from vouch.cre_adapters.workflow._secrets import loader

    from ._stack import Stack

    project = project_for(settings, module)
    name = _workflow_name(module)
    stack = Stack(settings)
    if broadcast:
        from vouch.cre_adapters import load_key

        chain = stack.chain_up()
        artifacts = stack.artifacts()
        deployment, _ = stack.deploy(chain, artifacts)
        receiver, abi = deploy_receiver(stack, chain, deployment, project, name)
        don = stack.don_config(deployment)
        keys = [
            load_key(n.keystore, stack.key_password(stack.node_key_id(n.keystore), n.keystore))
            for n in don.nodes
        ]
        links = [
            LocalLink(
                WorkflowNode(
                    don, n, Signer(k), secrets_loader=loader(n.keystore, k), rpc_url=chain.url
                )
            )
            for n, k in zip(don.nodes, keys, strict=True)
        ]
        target = Target(
            chain.chain_id, deployment.address("Forwarder"), deployment.workflow.owner, chain.url
        )
        engine = _engine(
            stack, don, links, module, target, project, receiver, abi, limits, console, deployment
        )
    else:
        running = stack.running_chain()
        accounts = [Account.create() for _ in range(settings.nodes)]
        nodes = [
            NodeSpec(name=f"node-{i}", address=a.address, port=1 + i, keystore=Path(f"sim-{i}"))
            for i, a in enumerate(accounts, start=1)
        ]
        don = DonConfig(
            f=settings.f, chain_id=settings.chain_id, forwarder=PLACEHOLDER_RECEIVER, nodes=nodes
        )
        secrets = _env_secrets()
        links = [
            LocalLink(
                WorkflowNode(
                    don,
                    n,
                    Signer(bytes(a.key)),
                    secrets=secrets,
                    rpc_url=running.url if running else None,
                )
            )
            for n, a in zip(nodes, accounts, strict=True)
        ]
        target = Target(
            settings.chain_id, don.forwarder, PLACEHOLDER_RECEIVER, running.url if running else None
        )
        receiver = project.receiver_address or PLACEHOLDER_RECEIVER
        engine = _engine(
            stack, don, links, module, target, project, receiver, [], limits, console, None
        )
    return asyncio.run(engine.execute(handler or project.handler, event or {}))


def _engine(
    stack: Stack,
    don: DonConfig,
    links: list[Any],
    module: Path,
    target: Target,
    project: WorkflowProject,
    receiver: str | None,
    abi: list[dict[str, Any]],
    limits: Literal["default", "cre"],
    console: Console,
    deployment: Deployment | None,
) -> WorkflowEngine:
    from vouch.cre_adapters.workflow import GasLimitedDelivery, WorkflowEngine
    from vouch.verifier import AttestationLog

    names = {f"${k}": v for k, v in (deployment.contracts if deployment else {}).items()}
    config = _fill(project.config, {**names, "$receiver": receiver or PLACEHOLDER_RECEIVER})
    say = _event_printer(console)
    log = delivery = None
    if deployment is not None:
        log = AttestationLog(stack.settings.log_path)
        chain = stack.require_chain()
        artifacts = stack.artifacts()
        delivery = GasLimitedDelivery(
            deployment, artifacts, stack.writer(chain, artifacts), log, on_event=say
        )
        delivery.receiver_abi = abi
    return WorkflowEngine(
        don,
        links,
        module,
        target,
        log=log,
        delivery=delivery,
        config=config,
        limits=limits,
        on_event=say,
    )


def run_project(
    settings: VouchSettings,
    module: Path,
    console: Console,
    *,
    max_firings: int | None = None,
    limits: Literal["default", "cre"] = "default",
    port: int = 8790,
) -> list[ExecutionResult]:
    """Run the module's handler on the local DON's node processes, once per trigger firing.

    interval and cron triggers fire on their schedule (``max_firings``, default
    1); an evm-log trigger fires once per matching log, confirmed that deep; an
    http trigger serves ``POST /trigger`` on loopback ``port`` (0: a free one)
    until ``max_firings`` requests ran (vouch/_workflow_http.py: bearer or signed).
    Every execution is logged in the home's log (what ``vouch audit`` reads).
    """
    from vouch.cre_adapters._wire import NodeClient
    from vouch.cre_adapters.workflow import HttpLink, Target
    from vouch.cre_adapters.workflow import load_workflow as load
    from vouch.cre_adapters.workflow._loader import allow_workflow

    from ._anchor import AnchorPolicy
    from ._stack import Stack

    project = project_for(settings, module)
    workflow, sha256 = load(module)
    chosen = workflow.get(project.handler)
    stack = Stack(settings)
    chain = stack.chain_up()
    artifacts = stack.artifacts()
    deployment, _ = stack.deploy(chain, artifacts)
    receiver, abi = deploy_receiver(stack, chain, deployment, project, workflow.name)
    don, _ = stack.don_up(deployment)
    for node in don.nodes:  # the nodes run only modules the operator registered
        allow_workflow(node.keystore.parent.parent, sha256)
    target = Target(
        chain.chain_id, deployment.address("Forwarder"), deployment.workflow.owner, chain.url
    )
    firings = max_firings or 1
    results: list[ExecutionResult] = []
    policy, writer = AnchorPolicy.from_settings(settings), stack.writer(chain, artifacts)

    def anchor(engine: WorkflowEngine) -> None:
        """After each execution: anchor the home's log when the policy says it is time."""
        if engine.log is not None:
            anchored = policy.maybe_anchor(
                engine.log,
                writer,
                artifacts,
                deployment,
                on_skip=lambda why: console.print(f"anchor-skipped: {why}", markup=False),
            )
            if anchored is not None:
                console.print(f"anchored: {anchored.model_dump()}", markup=False)

    async def go() -> None:
        async with NodeClient() as client:
            links = [HttpLink(n, client, settings.node_timeout * 4) for n in don.nodes]
            engine = _engine(
                stack,
                don,
                links,
                module,
                target,
                project,
                receiver,
                abi,
                limits,
                console,
                deployment,
            )
            if chosen.trigger.kind == "http":
                await _serve_http(
                    stack, chosen, engine, firings, port, results, console, lambda: anchor(engine)
                )
                return
            async for event in _firings(chosen.trigger, firings, chain.url):
                try:
                    results.append(await engine.execute(chosen.name, event))
                except Exception as exc:  # noqa: BLE001 - logged as aborted; the run goes on
                    console.print(f"execution failed: {exc}", markup=False)
                anchor(engine)

    asyncio.run(go())
    return results


async def _serve_http(
    stack: Stack,
    chosen: Any,
    engine: WorkflowEngine,
    firings: int,
    port: int,
    results: list[ExecutionResult],
    console: Console,
    after: Callable[[], None],
) -> None:
    """Serve the handler's http trigger: one execution per authorised request, ``firings`` times.

    ``after`` runs after each execution (the anchor policy).
    """
    from vouch.cre_adapters import load_key
    from vouch.cre_adapters._spec import HttpTrigger
    from vouch.cre_adapters.workflow._secrets import load_secrets

    from ._workflow_http import ModuleTriggerServer, trigger_secret

    def stores() -> list[dict[str, str]]:
        return [
            load_secrets(path, load_key(path, stack.key_password(stack.node_key_id(path), path)))
            for path in stack.node_keystores()
        ]

    key = trigger_secret(chosen.trigger.secret, stores)

    async def fire(event: dict[str, Any]) -> dict[str, Any]:
        try:
            result = await engine.execute(chosen.name, dict(event))
        finally:
            after()
        results.append(result)
        answer = {
            "status": result.status,
            "execution_id": result.execution_id,
            "outcome": result.outcome,
            "tx_hash": (result.submission or {}).get("tx_hash"),
        }
        return dict(json.loads(json.dumps(answer, default=str)))

    spec = HttpTrigger(kind="http", host="127.0.0.1", port=port, runs=firings)
    server = ModuleTriggerServer(
        spec, chosen.trigger.auth, key, fire, _event_printer(console), (Exception,)
    )
    await server.serve()


async def _firings(trigger: Any, count: int, rpc_url: str) -> Any:
    from vouch.cre_adapters.workflow import CronSchedule

    kind = trigger.kind
    if kind == "interval":
        for i in range(count):
            if i:
                await asyncio.sleep(trigger.seconds)
            yield {"kind": "interval", "firing": i + 1, "at": int(time.time())}
    elif kind == "cron":
        schedule = CronSchedule.parse(trigger.schedule)
        for i in range(count):
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            at = schedule.next_after(now) if i else now.replace(microsecond=0)
            await asyncio.sleep(max(0.0, (at - now).total_seconds()))
            yield {"kind": "cron", "firing": i + 1, "scheduled": at.isoformat() + "Z"}
    elif kind == "evm-log":
        async for log in _logs(trigger, count, rpc_url):
            yield log
    else:
        raise VouchError(
            f"a {kind} trigger is not served by `vouch workflow run` yet: fire it with "
            "`vouch workflow simulate FILE --event JSON` (add --broadcast to deliver)"
        )


async def _logs(trigger: Any, count: int, rpc_url: str) -> Any:
    import httpx

    async def rpc(method: str, params: list[Any]) -> Any:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = (
                await client.post(
                    rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                )
            ).json()
        if "error" in answer:
            raise VouchError(f"{method}: {answer['error']}")
        return answer["result"]

    seen = 0
    start = int(await rpc("eth_blockNumber", []), 16)
    while seen < count:
        head = int(await rpc("eth_blockNumber", []), 16)
        safe = head - trigger.confirmations
        if safe >= start:
            logs = await rpc(
                "eth_getLogs",
                [
                    {
                        "address": trigger.address,
                        "topics": list(trigger.topics),
                        "fromBlock": hex(start),
                        "toBlock": hex(safe),
                    }
                ],
            )
            for log in logs:
                yield {
                    "kind": "evm-log",
                    "block": int(log["blockNumber"], 16),
                    "tx": log["transactionHash"],
                    "index": int(log["logIndex"], 16),
                    "topics": log["topics"],
                    "data": log["data"],
                }
                seen += 1
                if seen >= count:
                    return
            start = safe + 1
        await asyncio.sleep(0.5)
