"""vouch.cre_adapters: a local CRE-style DON whose reports verify onchain.

Nodes (separate processes, own keys, own data sources) observe, a
coordinator gathers 2f+1 signed, fresh, mutually consistent observations
(asking each node twice to expose equivocation) over kept-alive loopback
connections (``NodeClient``), every signing node re-derives the outcome
(median for settlement; median, identical or mode per field for
``ReportSignRequest``) before it signs, and the Keystone-format report goes
through the forwarder on the chain. Nodes can be made faulty on purpose
(``FaultSpec``: down, slow, flaky, stale, lie, equivocate, bad-signature,
wrong-key, crash-mid-round) in the DON config or through their loopback, token-guarded
``/admin/fault``. Aggregation modes live behind ``Aggregator``; workflow
specs (``WorkflowSpec``) run through ``FeedWorkflow`` (a ``feeds`` target delivers to
FeedConsumer through ``ReportDelivery``; an ``http`` trigger is ``HttpTriggerServer``)
or ``SettlementWorkflow``.
See ``docs/internals.md`` for the wire formats.
"""

from ._consensus import (
    Aggregator,
    Identical,
    Median,
    Mode,
    PerField,
    ReportTrigger,
    consistent_subset,
    value_hash,
    within_band,
)
from ._coordinator import Absent, Coordinator, Evidence, Observed, Round
from ._delivery import ReportDelivery
from ._don import ChainTarget, DonConfig, DonSources, NodeOverride, NodeSpec, SourceSpec
from ._errors import (
    AnvilError,
    ChainError,
    CompileError,
    ConfigError,
    ConsensusFailed,
    ContractRevert,
    CreError,
    DataSourceError,
    KeystoreError,
    NodeError,
    QuorumNotReached,
    SigningRefused,
)
from ._faults import FAULT_MODES, FaultMode, FaultSpec
from ._http_trigger import FeedTriggerBody, HttpTriggerServer, trigger_token
from ._keystore import (
    create_keystore,
    ensure_password_file,
    keystore_address,
    load_key,
    password_file,
    read_password,
)
from ._messages import attested_value, encode_message, message_from_log
from ._node import OracleNode, create_app, serve
from ._processes import DonSupervisor, NodeStatus, admin_fault, health, set_fault
from ._protocol import (
    FeedsPayload,
    FieldObservations,
    HealthResponse,
    ObserveRequest,
    ReportSignRequest,
    SettlementSignRequest,
    SignResponse,
)
from ._relay import MessageRelay
from ._rounds import parse_round, round_id
from ._runner import FeedWorkflow
from ._sources import (
    DataSource,
    EvmQuery,
    EvmReadSource,
    HttpFeed,
    HttpJsonSource,
    MockPriceSource,
    MockRatesSource,
    Quote,
)
from ._spec import (
    Capability,
    ConsensusSpec,
    EvmLogTrigger,
    HttpTrigger,
    IntervalTrigger,
    ProposalTrigger,
    TargetSpec,
    WorkflowSpec,
)
from ._wire import NodeClient, WireError, WireTimeout
from ._workflow import ExecutionRef, SettlementJob, SettlementOutcome, SettlementWorkflow

__all__ = [
    "FAULT_MODES",
    "Aggregator",
    "AnvilError",
    "ChainError",
    "CompileError",
    "ConfigError",
    "ConsensusFailed",
    "ContractRevert",
    "Coordinator",
    "CreError",
    "DataSource",
    "DataSourceError",
    "ChainTarget",
    "DonConfig",
    "MessageRelay",
    "attested_value",
    "encode_message",
    "message_from_log",
    "DonSources",
    "NodeOverride",
    "DonSupervisor",
    "ExecutionRef",
    "FaultMode",
    "FaultSpec",
    "HealthResponse",
    "Identical",
    "KeystoreError",
    "Median",
    "MockPriceSource",
    "MockRatesSource",
    "FeedWorkflow",
    "FeedsPayload",
    "FieldObservations",
    "NodeClient",
    "Observed",
    "ReportDelivery",
    "ReportSignRequest",
    "WireError",
    "WireTimeout",
    "Capability",
    "ConsensusSpec",
    "EvmLogTrigger",
    "FeedTriggerBody",
    "HttpTrigger",
    "HttpTriggerServer",
    "IntervalTrigger",
    "ProposalTrigger",
    "TargetSpec",
    "WorkflowSpec",
    "EvmQuery",
    "EvmReadSource",
    "HttpFeed",
    "HttpJsonSource",
    "Mode",
    "NodeError",
    "NodeSpec",
    "NodeStatus",
    "ObserveRequest",
    "OracleNode",
    "PerField",
    "QuorumNotReached",
    "Quote",
    "ReportTrigger",
    "SettlementJob",
    "SettlementOutcome",
    "SettlementSignRequest",
    "SettlementWorkflow",
    "SignResponse",
    "SigningRefused",
    "SourceSpec",
    "consistent_subset",
    "create_app",
    "create_keystore",
    "health",
    "keystore_address",
    "load_key",
    "read_password",
    "password_file",
    "ensure_password_file",
    "admin_fault",
    "round_id",
    "parse_round",
    "Absent",
    "Evidence",
    "Round",
    "serve",
    "set_fault",
    "trigger_token",
    "value_hash",
    "within_band",
]
