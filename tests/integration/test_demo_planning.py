"""The settlement demo's plan comes from the planner and the run's model, planned in the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

import vouch._demo as demo
from vouch import Stack, load_settings
from vouch._flow import offline_model
from vouch.agents import (
    ChatModel,
    Message,
    ModelReply,
    SQLiteCheckpointStore,
    ToolSpec,
    trace_prefix,
)

from ..conftest import PASSWORD, copy_cache

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Recording(ChatModel):
    """Any model, with every request it was asked and the reply it gave."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[list[str], ModelReply]] = []

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        reply = await self.inner.complete(messages, tools)
        self.calls.append(([t.name for t in tools], reply))
        return reply


def test_the_offline_demo_plans_through_the_planner(
    evm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    copy_cache(evm.settings.home / "cache", home)
    settings = load_settings(home=home, keystore_password=PASSWORD, rpc_url=evm.chain.url)
    model = Recording(offline_model())
    monkeypatch.setattr(demo, "chat_model", lambda _: model)
    console = Console(record=True, width=200)
    try:
        outcome = demo.run_settlement_demo(settings, console)
    finally:
        Stack(settings).don_down()
    assert outcome is not None and outcome.status == "settled"
    # the first model call is the planner's: offered submit_plan only, answered with a call to it
    tools, reply = model.calls[0]
    assert tools == ["submit_plan"]
    [call] = reply.tool_calls
    assert call.name == "submit_plan"
    # the run executed exactly that plan; the agent's own call came after
    [run] = SQLiteCheckpointStore(home / "runs.db").list_runs()
    assert run.plan is not None
    planned = [s.model_dump(exclude_defaults=True) for s in run.plan.steps]
    assert planned == call.arguments["steps"]
    assert [s.id for s in run.plan.steps] == ["propose", "escrow", "settle"]
    assert "propose_settlement" in model.calls[1][0]
    # the planning is part of the run: its first spans are the plan span and the planner's chat
    # call under it, charged to the planner, and the proposal's trace hash binds them
    store = SQLiteCheckpointStore(home / "runs.db")
    trace = store.load_trace(run.run_id)
    chat, plan = trace[0], trace[1]
    assert plan["name"] == "plan" and plan["attributes"]["gen_ai.agent.name"] == "planner"
    assert chat["name"].startswith("chat ") and chat["parentSpanId"] == plan["spanId"]
    assert store.usage(run.run_id).by_agent["planner"].calls == 1
    proposal = store.load_steps(run.run_id)["propose"].output
    bound = trace_prefix(trace, proposal["trace_hash"])
    assert bound is not None and bound > 2
    assert "settled in block" in console.export_text()
