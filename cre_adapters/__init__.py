"""cre_adapters: a local CRE-style DON whose reports verify onchain.

Nodes (separate processes, own keys, own data sources) observe, a
coordinator gathers 2f+1 signed observations, every signing node re-derives
the median before it signs, and the Keystone-format report goes through the
forwarder on the chain. See ``docs/internals.md`` for the wire formats.
"""

from ._coordinator import Coordinator
from ._don import DonConfig, NodeSpec, SourceSpec
from ._errors import (
    AnvilError,
    ChainError,
    CompileError,
    ConfigError,
    ContractRevert,
    CreError,
    DataSourceError,
    KeystoreError,
    NodeError,
    QuorumNotReached,
    SigningRefused,
)
from ._keystore import create_keystore, keystore_address, load_key, read_password
from ._node import OracleNode, create_app, serve
from ._processes import DonSupervisor, NodeStatus, health
from ._protocol import HealthResponse, ObserveRequest, SettlementSignRequest, SignResponse
from ._sources import DataSource, MockPriceSource, Quote
from ._workflow import ExecutionRef, SettlementJob, SettlementOutcome, SettlementWorkflow

__all__ = [
    "AnvilError",
    "ChainError",
    "CompileError",
    "ConfigError",
    "ContractRevert",
    "Coordinator",
    "CreError",
    "DataSource",
    "DataSourceError",
    "DonConfig",
    "DonSupervisor",
    "ExecutionRef",
    "HealthResponse",
    "KeystoreError",
    "MockPriceSource",
    "NodeError",
    "NodeSpec",
    "NodeStatus",
    "ObserveRequest",
    "OracleNode",
    "QuorumNotReached",
    "Quote",
    "SettlementJob",
    "SettlementOutcome",
    "SettlementSignRequest",
    "SettlementWorkflow",
    "SignResponse",
    "SigningRefused",
    "SourceSpec",
    "create_app",
    "create_keystore",
    "health",
    "keystore_address",
    "load_key",
    "read_password",
    "serve",
]
