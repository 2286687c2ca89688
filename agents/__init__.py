"""agents: plan, act, observe, reflect. A workflow library of its own; needs no chain.

The only thing it knows of vouch is ``ProposalSubmitter``: where an agent
hands an ``ActionProposal`` to be attested and carried out.

The model, tool and memory layer sits behind small interfaces, each with a
conformance suite: ``ChatModel`` (``OfflineModel``, ``OpenAIChatModel``),
``Embedder`` (``HashingEmbedder``, ``OpenAIEmbedder``) and ``VectorStore``
(``InMemoryVectorStore``, ``SQLiteVectorStore``). The engine asks ``Models``
for a tier, never a model name.
"""

from ._builtin import evm_read_tool, http_fetch_tool
from ._config import Models, ModelSettings, Tier
from ._embed import Embedder, HashingEmbedder
from ._errors import (
    AgentError,
    BudgetExceeded,
    MaxStepsExceeded,
    ModelConfigError,
    ModelError,
    ModelUnavailable,
    RepairFailed,
    ToolError,
    VectorStoreError,
)
from ._loop import Agent, AgentResult, Tool, TraceEvent
from ._memory import LongTermMemory, Recalled, ShortTermMemory, memory_tools
from ._model import ChatModel, Message, ModelReply, OfflineModel, ToolCall, ToolSpec
from ._openai import Endpoint, OpenAIChatModel, OpenAIEmbedder
from ._proposal import ActionProposal, FactRequest, ProposalSubmitter, SettlementParams
from ._schema import strict_schema
from ._settlement import ProposeSettlementArgs, settlement_agent
from ._tokens import estimate_message_tokens, estimate_tokens
from ._usage import Budget, Price, PriceTable, UsageLedger, UsageRecord, UsageTotals
from ._vectors import Hit, InMemoryVectorStore, SQLiteVectorStore, VectorRecord, VectorStore

__all__ = [
    "ActionProposal",
    "Agent",
    "AgentError",
    "AgentResult",
    "Budget",
    "BudgetExceeded",
    "ChatModel",
    "Embedder",
    "Endpoint",
    "FactRequest",
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
    "ProposalSubmitter",
    "ProposeSettlementArgs",
    "Recalled",
    "RepairFailed",
    "SQLiteVectorStore",
    "SettlementParams",
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
    "settlement_agent",
    "strict_schema",
]
