"""vouch.cre_adapters: a local CRE-style DON whose reports verify onchain.

Nodes (separate processes, own keys, own data sources) observe, a
coordinator gathers 2f+1 signed, fresh, mutually consistent observations
(asking each node twice to expose equivocation) over kept-alive connections
(``HttpxClient``, mutual TLS on a DON of separate hosts), every signing node re-derives the outcome
(median for settlement; median, identical or mode per field for
``ReportSignRequest``) before it signs, and the Keystone-format report goes
through the forwarder on the chain. Nodes can be made faulty on purpose
(``FaultSpec``: down, slow, flaky, stale, lie, equivocate, bad-signature,
wrong-key, crash-mid-round) in the DON config or through their loopback, token-guarded
``/admin/fault``. Aggregation modes live behind ``Aggregator``; workflows as
code are ``cre_adapters.workflow``. The legacy spec engine (``WorkflowSpec`` run by
``FeedWorkflow``: feed rounds, a ``feeds`` target delivered to FeedConsumer through
``ReportDelivery``) stays a library class that writes the ``feed`` log grammar the
audit still checks; the vouch CLI refuses spec files (issue 20).
See ``docs/internals.md`` for the wire formats.

Exports load lazily (PEP 562): a node process (``python -m vouch.cre_adapters.node``)
imports only the modules a node needs. A new export is one line in ``_EXPORTS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Bundles": "._bundles",
    "init_bundles": "._bundles",
    "Aggregator": "._consensus",
    "Identical": "._consensus",
    "Median": "._consensus",
    "Mode": "._consensus",
    "PerField": "._consensus",
    "ReportTrigger": "._consensus",
    "consistent_subset": "._consensus",
    "value_hash": "._consensus",
    "within_band": "._consensus",
    "Absent": "._coordinator",
    "Coordinator": "._coordinator",
    "Evidence": "._coordinator",
    "Observed": "._coordinator",
    "Round": "._coordinator",
    "ReportDelivery": "._delivery",
    "ChainTarget": "._don",
    "DonConfig": "._don",
    "DonSources": "._don",
    "NodeOverride": "._don",
    "NodeSpec": "._don",
    "SourceSpec": "._don",
    "AnvilError": "._errors",
    "ChainError": "._errors",
    "CompileError": "._errors",
    "ConfigError": "._errors",
    "ConsensusFailed": "._errors",
    "ContractRevert": "._errors",
    "CreError": "._errors",
    "DataSourceError": "._errors",
    "KeystoreError": "._errors",
    "NodeError": "._errors",
    "QuorumNotReached": "._errors",
    "SigningRefused": "._errors",
    "FAULT_MODES": "._faults",
    "FaultMode": "._faults",
    "FaultSpec": "._faults",
    "FeedTriggerBody": "._http_trigger",
    "HttpTriggerServer": "._http_trigger",
    "trigger_token": "._http_trigger",
    "create_keystore": "._keystore",
    "ensure_password_file": "._keystore",
    "keystore_address": "._keystore",
    "load_key": "._keystore",
    "password_file": "._keystore",
    "read_password": "._keystore",
    "attested_value": "._messages",
    "encode_message": "._messages",
    "message_from_log": "._messages",
    "OracleNode": "._node",
    "create_app": "._node_app",
    "serve": "._node_app",
    "DonSupervisor": "._processes",
    "NodeStatus": "._processes",
    "admin_fault": "._processes",
    "health": "._processes",
    "set_fault": "._processes",
    "FeedsPayload": "._protocol",
    "FieldObservations": "._protocol",
    "HealthResponse": "._protocol",
    "ObserveRequest": "._protocol",
    "ReportSignRequest": "._protocol",
    "SettlementSignRequest": "._protocol",
    "SignResponse": "._protocol",
    "MessageRelay": "._relay",
    "parse_round": "._rounds",
    "round_id": "._rounds",
    "FeedWorkflow": "._runner",
    "DataSource": "._sources",
    "EvmQuery": "._sources",
    "EvmReadSource": "._sources",
    "HttpFeed": "._sources",
    "HttpJsonSource": "._sources",
    "MockPriceSource": "._sources",
    "MockRatesSource": "._sources",
    "Quote": "._sources",
    "Capability": "._spec",
    "ConsensusSpec": "._spec",
    "EvmLogTrigger": "._spec",
    "HttpTrigger": "._spec",
    "IntervalTrigger": "._spec",
    "ProposalTrigger": "._spec",
    "TargetSpec": "._spec",
    "WorkflowSpec": "._spec",
    "HttpxClient": "._transport",
    "Transport": "._transport",
    "open_client": "._transport",
    "NodeClient": "._wire",
    "WireError": "._wire",
    "WireTimeout": "._wire",
    "ExecutionRef": "._workflow",
    "SettlementJob": "._workflow",
    "SettlementOutcome": "._workflow",
    "SettlementWorkflow": "._workflow",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - a list, built from the lazy export table


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # the static view: mypy and editors see every export
    from ._bundles import (
        Bundles as Bundles,
    )
    from ._bundles import (
        init_bundles as init_bundles,
    )
    from ._consensus import (
        Aggregator as Aggregator,
    )
    from ._consensus import (
        Identical as Identical,
    )
    from ._consensus import (
        Median as Median,
    )
    from ._consensus import (
        Mode as Mode,
    )
    from ._consensus import (
        PerField as PerField,
    )
    from ._consensus import (
        ReportTrigger as ReportTrigger,
    )
    from ._consensus import (
        consistent_subset as consistent_subset,
    )
    from ._consensus import (
        value_hash as value_hash,
    )
    from ._consensus import (
        within_band as within_band,
    )
    from ._coordinator import (
        Absent as Absent,
    )
    from ._coordinator import (
        Coordinator as Coordinator,
    )
    from ._coordinator import (
        Evidence as Evidence,
    )
    from ._coordinator import (
        Observed as Observed,
    )
    from ._coordinator import (
        Round as Round,
    )
    from ._delivery import (
        ReportDelivery as ReportDelivery,
    )
    from ._don import (
        ChainTarget as ChainTarget,
    )
    from ._don import (
        DonConfig as DonConfig,
    )
    from ._don import (
        DonSources as DonSources,
    )
    from ._don import (
        NodeOverride as NodeOverride,
    )
    from ._don import (
        NodeSpec as NodeSpec,
    )
    from ._don import (
        SourceSpec as SourceSpec,
    )
    from ._errors import (
        AnvilError as AnvilError,
    )
    from ._errors import (
        ChainError as ChainError,
    )
    from ._errors import (
        CompileError as CompileError,
    )
    from ._errors import (
        ConfigError as ConfigError,
    )
    from ._errors import (
        ConsensusFailed as ConsensusFailed,
    )
    from ._errors import (
        ContractRevert as ContractRevert,
    )
    from ._errors import (
        CreError as CreError,
    )
    from ._errors import (
        DataSourceError as DataSourceError,
    )
    from ._errors import (
        KeystoreError as KeystoreError,
    )
    from ._errors import (
        NodeError as NodeError,
    )
    from ._errors import (
        QuorumNotReached as QuorumNotReached,
    )
    from ._errors import (
        SigningRefused as SigningRefused,
    )
    from ._faults import (
        FAULT_MODES as FAULT_MODES,
    )
    from ._faults import (
        FaultMode as FaultMode,
    )
    from ._faults import (
        FaultSpec as FaultSpec,
    )
    from ._http_trigger import (
        FeedTriggerBody as FeedTriggerBody,
    )
    from ._http_trigger import (
        HttpTriggerServer as HttpTriggerServer,
    )
    from ._http_trigger import (
        trigger_token as trigger_token,
    )
    from ._keystore import (
        create_keystore as create_keystore,
    )
    from ._keystore import (
        ensure_password_file as ensure_password_file,
    )
    from ._keystore import (
        keystore_address as keystore_address,
    )
    from ._keystore import (
        load_key as load_key,
    )
    from ._keystore import (
        password_file as password_file,
    )
    from ._keystore import (
        read_password as read_password,
    )
    from ._messages import (
        attested_value as attested_value,
    )
    from ._messages import (
        encode_message as encode_message,
    )
    from ._messages import (
        message_from_log as message_from_log,
    )
    from ._node import (
        OracleNode as OracleNode,
    )
    from ._node_app import (
        create_app as create_app,
    )
    from ._node_app import (
        serve as serve,
    )
    from ._processes import (
        DonSupervisor as DonSupervisor,
    )
    from ._processes import (
        NodeStatus as NodeStatus,
    )
    from ._processes import (
        admin_fault as admin_fault,
    )
    from ._processes import (
        health as health,
    )
    from ._processes import (
        set_fault as set_fault,
    )
    from ._protocol import (
        FeedsPayload as FeedsPayload,
    )
    from ._protocol import (
        FieldObservations as FieldObservations,
    )
    from ._protocol import (
        HealthResponse as HealthResponse,
    )
    from ._protocol import (
        ObserveRequest as ObserveRequest,
    )
    from ._protocol import (
        ReportSignRequest as ReportSignRequest,
    )
    from ._protocol import (
        SettlementSignRequest as SettlementSignRequest,
    )
    from ._protocol import (
        SignResponse as SignResponse,
    )
    from ._relay import (
        MessageRelay as MessageRelay,
    )
    from ._rounds import (
        parse_round as parse_round,
    )
    from ._rounds import (
        round_id as round_id,
    )
    from ._runner import (
        FeedWorkflow as FeedWorkflow,
    )
    from ._sources import (
        DataSource as DataSource,
    )
    from ._sources import (
        EvmQuery as EvmQuery,
    )
    from ._sources import (
        EvmReadSource as EvmReadSource,
    )
    from ._sources import (
        HttpFeed as HttpFeed,
    )
    from ._sources import (
        HttpJsonSource as HttpJsonSource,
    )
    from ._sources import (
        MockPriceSource as MockPriceSource,
    )
    from ._sources import (
        MockRatesSource as MockRatesSource,
    )
    from ._sources import (
        Quote as Quote,
    )
    from ._spec import (
        Capability as Capability,
    )
    from ._spec import (
        ConsensusSpec as ConsensusSpec,
    )
    from ._spec import (
        EvmLogTrigger as EvmLogTrigger,
    )
    from ._spec import (
        HttpTrigger as HttpTrigger,
    )
    from ._spec import (
        IntervalTrigger as IntervalTrigger,
    )
    from ._spec import (
        ProposalTrigger as ProposalTrigger,
    )
    from ._spec import (
        TargetSpec as TargetSpec,
    )
    from ._spec import (
        WorkflowSpec as WorkflowSpec,
    )
    from ._transport import (
        HttpxClient as HttpxClient,
    )
    from ._transport import (
        Transport as Transport,
    )
    from ._transport import (
        open_client as open_client,
    )
    from ._wire import (
        NodeClient as NodeClient,
    )
    from ._wire import (
        WireError as WireError,
    )
    from ._wire import (
        WireTimeout as WireTimeout,
    )
    from ._workflow import (
        ExecutionRef as ExecutionRef,
    )
    from ._workflow import (
        SettlementJob as SettlementJob,
    )
    from ._workflow import (
        SettlementOutcome as SettlementOutcome,
    )
    from ._workflow import (
        SettlementWorkflow as SettlementWorkflow,
    )
