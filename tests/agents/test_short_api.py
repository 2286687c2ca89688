"""The short API: ``@tool`` on typed functions, ``Agent(name, instructions, tools=, model=)``,
``Supervisor(agents=[...])``, ``Swarm(agents=[...])``, ``run_sync``; and the 15-line example."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from vouch.agents import (
    Agent,
    Endpoint,
    Models,
    ModelSettings,
    OfflineModel,
    Supervisor,
    Swarm,
    run_sync,
    tool,
)

from .fake_openai import Answer, FakeOpenAI, schema_problems

EXAMPLE = Path(__file__).parents[2] / "examples" / "two_agents.py"


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("two_agents", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_two_agent_example_fits_in_15_lines() -> None:
    lines = [line for line in EXAMPLE.read_text().splitlines() if line.strip()]
    assert len(lines) <= 15, len(lines)


def test_offline_the_example_says_plainly_it_cannot_act() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert " failed: step 'analyst' failed" in done.stdout
    assert "the offline model cannot act on this goal" in done.stdout
    assert "Configure a model for this tier" in done.stdout


def test_the_example_on_a_real_model_does_the_work(server: FakeOpenAI, endpoint: Endpoint) -> None:
    module = example()
    plan = {
        "steps": [
            {
                "id": "price",
                "task": "price ETH",
                "agent": "analyst",
                "capability": None,
                "depends_on": [],
                "criteria": [],
            },
            {
                "id": "value",
                "task": "value 2 ETH",
                "agent": "trader",
                "capability": None,
                "depends_on": ["price"],
                "criteria": [],
            },
        ],
        "goal_done": False,
        "done_reason": "",
    }
    server.then(
        Answer(tool_calls=[("submit_plan", json.dumps(plan))]),
        Answer(tool_calls=[("price", '{"pair": "ETH/USD"}')]),
        Answer("ETH/USD is 3000"),
        Answer(tool_calls=[("convert", '{"amount": 2, "rate": 3000}')]),
        Answer("2 ETH are worth 6000 USD"),
    )
    models = Models(ModelSettings(small=endpoint, large=endpoint))
    result = run_sync(
        Supervisor(agents=[module.analyst, module.trader], models=models), module.GOAL
    )
    assert result.ok and str(result) == "price: ETH/USD is 3000\nvalue: 2 ETH are worth 6000 USD"
    requests = server.chat_requests()
    tools = {t["function"]["name"]: t["function"] for t in requests[1]["tools"]}
    assert tools["price"]["strict"] is True and schema_problems(tools["price"]["parameters"]) == []
    assert tools["price"]["description"] == "The last price of a pair such as ETH/USD."
    assert json.loads(requests[4]["messages"][-1]["content"]) == 6000.0  # convert ran
    module.analyst.models = module.trader.models = None  # leave the module as imported


def test_tool_makes_a_strict_schema_from_the_signature() -> None:
    @tool
    def transfer(to: str, amount: int, memo: str | None = None, fast: bool = False) -> str:
        """Move funds.

        Args:
            to: the receiving address.
            amount: in wei.
        """
        return f"{to}:{amount}:{memo}:{fast}"

    spec = transfer.spec()
    params = spec.parameters
    assert spec.strict and spec.description == "Move funds." and schema_problems(params) == []
    assert params["required"] == ["to", "amount", "memo", "fast"]
    assert params["properties"]["to"]["description"] == "the receiving address."
    assert params["properties"]["fast"]["anyOf"] == [{"type": "boolean"}, {"type": "null"}]
    with pytest.raises(TypeError, match="parameter 'x' has no type annotation"):
        tool(lambda x: x)


def test_the_old_positional_agent_form_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="instructions must be text; the model goes in model="):
        Agent("a", OfflineModel(), [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="neither a tier"):
        Agent("a", "x", model="gpt-4o")


def test_a_swarm_of_agents_hands_off_and_answers(server: FakeOpenAI, endpoint: Endpoint) -> None:
    @tool
    def price(pair: str) -> float:
        """The price of a pair."""
        return 3000.0

    analyst = Agent("analyst", "Find the price, then hand to the trader.", tools=[price])
    trader = Agent("trader", "Answer with the value.")
    server.then(
        Answer(tool_calls=[("price", '{"pair": "ETH/USD"}')]),
        Answer(
            tool_calls=[
                ("write", '{"key": "price", "value": "3000"}'),
                ("handoff", '{"to": "trader"}'),
            ]
        ),
        Answer("2 ETH = 6000 USD"),
    )
    models = Models(ModelSettings(small=endpoint))
    outcome = Swarm(agents=[analyst, trader], models=models).run_sync("value 2 ETH")
    assert (outcome.status, outcome.answer) == ("done", "2 ETH = 6000 USD")
    assert outcome.board.entries == {"price": "3000"} and outcome.path[-1] == "trader"
