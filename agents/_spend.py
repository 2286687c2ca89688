"""Model calls within a budget: the worst case held before sending, the usage charged after.

Every model call that is charged somewhere (an ``Agent`` loop with a ledger, an
engine step, a swarm turn, a memory's summary) goes through :func:`within`:

1. its prompt is counted (estimated locally: messages plus tool schemas) and its
   worst case, that prompt plus the model's ``max_tokens`` at the output price,
   is reserved against the run's and the agent's budgets; if it does not fit,
   ``BudgetExceeded`` is raised and nothing is sent;
2. the call runs while the reservation holds (calls in parallel each hold theirs);
3. the usage is charged under the *configured* model name (``ChatModel.name``),
   marked estimated when the server reported none.
"""

from __future__ import annotations

import json

from ._model import ChatModel, Message, ModelReply, ToolSpec
from ._tokens import estimate_message_tokens, estimate_tokens
from ._usage import UsageLedger

UNDECLARED_MAX_TOKENS = 4096
"""The worst-case completion assumed for a model that declares no ``max_tokens``."""


def worst_output(model: ChatModel) -> int:
    """The most completion tokens one call of ``model`` can cost."""
    return model.max_tokens if model.max_tokens is not None else UNDECLARED_MAX_TOKENS


def prompt_estimate(messages: list[Message], tools: list[ToolSpec]) -> int:
    """Prompt tokens of a call, estimated locally: the messages and the tools' schemas."""
    schemas = sum(
        estimate_tokens(t.name)
        + estimate_tokens(t.description)
        + estimate_tokens(json.dumps(t.parameters))
        for t in tools
    )
    return estimate_message_tokens(messages) + schemas


def counted(reply: ModelReply, messages: list[Message]) -> ModelReply:
    """The reply with estimated token counts (marked so) when the model reported none."""
    if reply.prompt_tokens or reply.completion_tokens:
        return reply
    completion = estimate_tokens(reply.content) + sum(
        estimate_tokens(json.dumps(c.arguments, default=str)) for c in reply.tool_calls
    )
    return reply.model_copy(
        update={
            "prompt_tokens": estimate_message_tokens(messages),
            "completion_tokens": completion,
            "usage_estimated": True,
        }
    )


async def within(
    model: ChatModel,
    messages: list[Message],
    tools: list[ToolSpec],
    ledger: UsageLedger | None,
    agent: str,
    step: int,
) -> ModelReply:
    """Call ``model`` if its worst case fits ``ledger``'s budgets; charge what it used.

    Without a ledger the call is simply made (and counted).

    Raises:
        BudgetExceeded: the worst case does not fit (nothing was sent), or the
            actual usage crossed a budget (charged, then raised).
    """
    if ledger is None:
        return counted(await model.complete(messages, tools), messages)
    with ledger.reserve(agent, model.name, prompt_estimate(messages, tools), worst_output(model)):
        reply = counted(await model.complete(messages, tools), messages)
    ledger.charge_model(
        agent, step, model.name, reply.prompt_tokens, reply.completion_tokens, reply.usage_estimated
    )
    return reply
