"""Deploy the settlement stack and describe it in a deployment manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from web3 import Web3

from vouch.verifier import workflow_id as derive_workflow_id

from .._errors import ChainError
from ._compile import Artifacts
from ._writer import ChainWriter

SETTLEMENT_REPORT_ID = "0x0001"
FEEDS_WORKFLOW = "feeds"
FEEDS_REPORT_ID = "0x0003"


class WorkflowInfo(BaseModel):
    """The workflow identity a receiver accepts reports from."""

    name: str = Field(max_length=10)
    id: str
    owner: str
    report_id: str = SETTLEMENT_REPORT_ID


class DonOnchain(BaseModel):
    """The DON config written to the forwarder."""

    don_id: int
    config_version: int
    f: int
    signers: list[str]


class Deployment(BaseModel):
    """What a deployment left on a chain: written as JSON beside the chain's state."""

    chain_id: int
    rpc_url: str
    block: int
    deployer: str
    contracts: dict[str, str]
    don: DonOnchain
    workflow: WorkflowInfo
    feed_workflow: WorkflowInfo | None = Field(
        default=None, description="the workflow FeedConsumer accepts reports from"
    )
    freshness_window: int
    source_hash: str

    def address(self, name: str) -> str:
        """The address of contract ``name``.

        Raises:
            ChainError: if this deployment has no such contract.
        """
        try:
            return self.contracts[name]
        except KeyError:
            raise ChainError(f"deployment has no {name}; have {sorted(self.contracts)}") from None

    def save(self, path: Path) -> None:
        """Write the manifest as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        """Read a manifest."""
        return cls.model_validate_json(path.read_text())


def contract(w3: Web3, artifacts: Artifacts, name: str, address: str) -> Any:
    """A web3 contract object for a deployed ``name``."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifacts.get(name).abi)


def deploy_settlement_stack(
    writer: ChainWriter,
    artifacts: Artifacts,
    don: DonOnchain,
    workflow_name: str = "settlement",
    freshness_window: int = 300,
    rpc_url: str = "",
) -> Deployment:
    """Deploy Forwarder, SettlementGate, FeedConsumer, AttestationAnchor, two test tokens; configure the DON.

    The gate accepts reports of ``workflow_name``, the FeedConsumer reports of the
    ``feeds`` workflow (``Deployment.feed_workflow``); both are owned by the deployer.
    The gate is pinned to ``don`` (its DON id, config versions from its current one
    up) and allows the two test tokens.

    Args:
        writer: sends the transactions; its address becomes the workflow owner.
        artifacts: compiled contracts.
        don: the signer set and f to configure on the forwarder.
        workflow_name: at most 10 ASCII characters.
        freshness_window: seconds a report stays acceptable to the gate.
        rpc_url: recorded in the manifest.
    """
    workflow = WorkflowInfo(
        name=workflow_name, id="0x" + derive_workflow_id(workflow_name).hex(), owner=writer.address
    )
    feeds = WorkflowInfo(
        name=FEEDS_WORKFLOW,
        id="0x" + derive_workflow_id(FEEDS_WORKFLOW).hex(),
        owner=writer.address,
        report_id=FEEDS_REPORT_ID,
    )

    def deploy(name: str, *args: Any) -> str:
        artifact = artifacts.get(name)
        return writer.deploy(artifact.abi, artifact.bytecode, *args)[0]

    forwarder = deploy("Forwarder")
    gate = deploy(
        "SettlementGate",
        forwarder,
        writer.address,
        workflow.id,
        freshness_window,
        don.don_id,
        don.config_version,
    )
    consumer = deploy("FeedConsumer", forwarder, writer.address, feeds.id, freshness_window)
    weth = deploy("TestToken", "Wrapped Ether (test)", "WETH")
    usdc = deploy("TestToken", "USD Coin (test)", "USDC")
    anchor = deploy("AttestationAnchor")
    fwd = contract(writer.w3, artifacts, "Forwarder", forwarder)
    gate_contract = contract(writer.w3, artifacts, "SettlementGate", gate)
    for token in (weth, usdc):
        writer.transact(gate_contract.functions.setTokenAllowed(token, True))
    receipt = writer.transact(
        fwd.functions.setConfig(don.don_id, don.config_version, don.f, don.signers)
    )
    return Deployment(
        chain_id=writer.chain_id,
        rpc_url=rpc_url,
        block=receipt["blockNumber"],
        deployer=writer.address,
        contracts={
            "Forwarder": forwarder,
            "SettlementGate": gate,
            "FeedConsumer": consumer,
            "AttestationAnchor": anchor,
            "WETH": weth,
            "USDC": usdc,
        },
        don=don,
        workflow=workflow,
        feed_workflow=feeds,
        freshness_window=freshness_window,
        source_hash=artifacts.source_hash,
    )


def deploy_forwarder(writer: ChainWriter, artifacts: Artifacts, don: DonOnchain) -> str:
    """Deploy a Forwarder and configure ``don`` on it (e.g. on a second chain); its address."""
    artifact = artifacts.get("Forwarder")
    forwarder = writer.deploy(artifact.abi, artifact.bytecode)[0]
    fwd = contract(writer.w3, artifacts, "Forwarder", forwarder)
    writer.transact(fwd.functions.setConfig(don.don_id, don.config_version, don.f, don.signers))
    return forwarder


def deploy_gateway(
    writer: ChainWriter,
    artifacts: Artifacts,
    forwarder: str,
    token: str,
    workflow: WorkflowInfo,
    freshness_window: int = 300,
    don: DonOnchain | None = None,
) -> str:
    """Deploy a CrossChainGateway that accepts reports of ``workflow`` from ``forwarder``.

    Args:
        writer: sends the transactions and becomes the gateway's owner.
        artifacts: compiled contracts.
        forwarder: the only address allowed to deliver reports to it.
        token: the ERC-20 of the value leg (locked on the source, released on the destination).
        workflow: the workflow owner and id reports must name.
        freshness_window: seconds a report stays acceptable.
        don: the only DON whose reports it accepts (its id, config versions from its
            current one up); None accepts any DON configured on ``forwarder``.
    """
    artifact = artifacts.get("CrossChainGateway")
    pin = (don.don_id, don.config_version) if don is not None else (0, 0)
    args = (token, forwarder, workflow.owner, workflow.id, freshness_window, *pin)
    return writer.deploy(artifact.abi, artifact.bytecode, *args)[0]
