"""EVM side of the adapters: compile, run anvil, deploy, write transactions."""

from ._anvil import ANVIL_DEV_KEYS, AnvilProcess, free_port, rpc_ready, start_anvil
from ._async_writer import AsyncChainWriter, NonceBook
from ._compile import Artifact, Artifacts, compile_contracts, sources_digest
from ._deploy import (
    Deployment,
    DonOnchain,
    WorkflowInfo,
    contract,
    deploy_forwarder,
    deploy_gateway,
    deploy_settlement_stack,
)
from ._toolchain import Toolchain, ToolchainMissing, find_toolchain, user_toolchain_dir
from ._writer import ChainWriter, ErrorDecoder

__all__ = [
    "ANVIL_DEV_KEYS",
    "AsyncChainWriter",
    "NonceBook",
    "AnvilProcess",
    "Artifact",
    "Artifacts",
    "ChainWriter",
    "Deployment",
    "DonOnchain",
    "ErrorDecoder",
    "Toolchain",
    "ToolchainMissing",
    "WorkflowInfo",
    "compile_contracts",
    "contract",
    "deploy_forwarder",
    "deploy_gateway",
    "deploy_settlement_stack",
    "find_toolchain",
    "free_port",
    "rpc_ready",
    "sources_digest",
    "start_anvil",
    "user_toolchain_dir",
]
