"""vouch.agents: plan, act, observe, reflect. A workflow library of its own; needs no chain.

It knows nothing of the application that uses it: tools that act onchain, and
what they propose, belong there.

The short way in::

    @tool
    def price(pair: str) -> float: ...

    analyst = Agent("analyst", "Look up prices.", tools=[price], model="small")
    print(run_sync(Supervisor(agents=[analyst, trader]), "analyst, then trader: ..."))

The model, tool and memory layer sits behind small interfaces, each with a
conformance suite: ``ChatModel`` (``OfflineModel``, ``OpenAIChatModel``),
``Embedder`` (``HashingEmbedder``, ``OpenAIEmbedder``) and ``VectorStore``
(``InMemoryVectorStore``, ``SQLiteVectorStore``). The engine asks ``Models``
for a tier, never a model name.
"""

from ._builtin import evm_read_tool, http_fetch_tool
from ._checkpoint import (
    CheckpointStore,
    Decision,
    MemoryCheckpointStore,
    PendingAction,
    RunRecord,
    SQLiteCheckpointStore,
    StepRecord,
    UsageSummary,
)
from ._config import Models, ModelSettings, Tier
from ._embed import Embedder, HashingEmbedder
from ._errors import (
    ActionRejected,
    AgentBudgetExceeded,
    AgentError,
    BudgetExceeded,
    CheckpointError,
    HandoffDepthExceeded,
    Interrupted,
    LeaseLost,
    LoopDetected,
    MaxStepsExceeded,
    ModelConfigError,
    ModelError,
    ModelUnavailable,
    PlanCycle,
    PlanError,
    RepairFailed,
    RunStepLimit,
    RunStopped,
    RunTimedOut,
    StepFailed,
    ToolError,
    UnknownAgent,
    UnknownDependency,
    VectorStoreError,
)
from ._executor import Executor
from ._guards import Limits, RunGuard
from ._lease import (
    Lease,
    LeaseKeeper,
    RunLeases,
    SQLiteRunLeases,
    open_checkpoints,
    run_leases,
)
from ._loop import Agent, AgentResult, Tool, TraceEvent
from ._memory import LongTermMemory, Recalled, ShortTermMemory, memory_tools
from ._model import (
    ActionRule,
    ChatModel,
    Message,
    ModelReply,
    OfflineModel,
    PlanTemplate,
    ToolCall,
    ToolSpec,
)
from ._openai import Endpoint, OpenAIChatModel, OpenAIEmbedder
from ._plan import Criterion, Plan, Planner, Step
from ._registry import AgentCard, Registry, Route, Worker
from ._schema import strict_schema
from ._step import (
    PLANNER,
    PLANNING,
    Critic,
    Hitl,
    RuleCritic,
    RunOutcome,
    StepContext,
    Verdict,
    current_step,
)
from ._tokens import estimate_message_tokens, estimate_tokens
from ._tools import tool
from ._topologies import (
    SWARM_STEP,
    Blackboard,
    Chain,
    Supervisor,
    Swarm,
    SwarmOutcome,
    TopologyResult,
    Turn,
    chain_plan,
    model_swarm_agent,
    run_sync,
)
from ._trace import (
    Span,
    Tracer,
    bind_trace,
    current_trace_hash,
    trace_hash,
    trace_prefix,
)
from ._usage import Budget, Price, PriceTable, UsageLedger, UsageRecord, UsageTotals
from ._vectors import Hit, InMemoryVectorStore, SQLiteVectorStore, VectorRecord, VectorStore
from ._workers import ModelCritic, TracedModel, agent_worker, guarded_tools

__all__ = [
    "ActionRule",
    "ActionRejected",
    "AgentBudgetExceeded",
    "AgentCard",
    "Blackboard",
    "Chain",
    "CheckpointError",
    "CheckpointStore",
    "Criterion",
    "Critic",
    "Decision",
    "Executor",
    "PLANNER",
    "PLANNING",
    "HandoffDepthExceeded",
    "Hitl",
    "Interrupted",
    "Limits",
    "LoopDetected",
    "MemoryCheckpointStore",
    "ModelCritic",
    "PendingAction",
    "Plan",
    "PlanCycle",
    "PlanError",
    "PlanTemplate",
    "Planner",
    "Registry",
    "Route",
    "RuleCritic",
    "RunGuard",
    "RunOutcome",
    "RunRecord",
    "RunStepLimit",
    "LeaseLost",
    "RunStopped",
    "RunTimedOut",
    "SQLiteCheckpointStore",
    "SQLiteRunLeases",
    "Lease",
    "LeaseKeeper",
    "RunLeases",
    "open_checkpoints",
    "run_leases",
    "Span",
    "Step",
    "StepContext",
    "StepFailed",
    "StepRecord",
    "Supervisor",
    "SWARM_STEP",
    "Swarm",
    "SwarmOutcome",
    "TopologyResult",
    "TracedModel",
    "Tracer",
    "Turn",
    "UnknownAgent",
    "UnknownDependency",
    "UsageSummary",
    "Verdict",
    "Worker",
    "agent_worker",
    "bind_trace",
    "chain_plan",
    "current_step",
    "current_trace_hash",
    "guarded_tools",
    "model_swarm_agent",
    "trace_hash",
    "trace_prefix",
    "Agent",
    "AgentError",
    "AgentResult",
    "Budget",
    "BudgetExceeded",
    "ChatModel",
    "Embedder",
    "Endpoint",
    "HashingEmbedder",
    "Hit",
    "InMemoryVectorStore",
    "LongTermMemory",
    "MaxStepsExceeded",
    "Message",
    "ModelConfigError",
    "ModelError",
    "ModelReply",
    "ModelSettings",
    "ModelUnavailable",
    "Models",
    "OfflineModel",
    "OpenAIChatModel",
    "OpenAIEmbedder",
    "Price",
    "PriceTable",
    "Recalled",
    "RepairFailed",
    "SQLiteVectorStore",
    "ShortTermMemory",
    "Tier",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolSpec",
    "TraceEvent",
    "UsageLedger",
    "UsageRecord",
    "UsageTotals",
    "VectorRecord",
    "VectorStore",
    "VectorStoreError",
    "estimate_message_tokens",
    "estimate_tokens",
    "evm_read_tool",
    "http_fetch_tool",
    "memory_tools",
    "strict_schema",
    "run_sync",
    "tool",
]
