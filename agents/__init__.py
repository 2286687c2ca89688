"""agents: plan, act, observe, reflect. A workflow library of its own; needs no chain.

The only thing it knows of vouch is ``ProposalSubmitter``: where an agent
hands an ``ActionProposal`` to be attested and carried out.
"""

from ._errors import AgentError, MaxStepsExceeded, ModelError, ToolError
from ._loop import Agent, AgentResult, Tool, TraceEvent
from ._model import ChatModel, Message, ModelReply, OfflineModel, ToolCall, ToolSpec
from ._proposal import ActionProposal, FactRequest, ProposalSubmitter, SettlementParams
from ._settlement import ProposeSettlementArgs, settlement_agent

__all__ = [
    "ActionProposal",
    "Agent",
    "AgentError",
    "AgentResult",
    "ChatModel",
    "FactRequest",
    "MaxStepsExceeded",
    "Message",
    "ModelError",
    "ModelReply",
    "OfflineModel",
    "ProposalSubmitter",
    "ProposeSettlementArgs",
    "SettlementParams",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolSpec",
    "TraceEvent",
    "settlement_agent",
]
