"""`vouch runs show` prints what a run spent: tokens and USD per step, agent and the run."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vouch.agents import (
    Agent,
    ChatModel,
    Executor,
    Limits,
    Message,
    ModelReply,
    Plan,
    Price,
    PriceTable,
    SQLiteCheckpointStore,
    Step,
    ToolSpec,
    agent_worker,
)
from vouch.cli import app


class Priced(ChatModel):
    """Answers at once, reporting server-style usage under its own model name."""

    def __init__(self, name: str, usage: tuple[int, int]) -> None:
        self.name, self.usage = name, usage

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        p, c = self.usage
        return ModelReply(content="done", model=self.name, prompt_tokens=p, completion_tokens=c)


@pytest.fixture
def run_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    db = tmp_path / "runs.db"
    prices = PriceTable(
        prices={"maxi": Price(input_per_mtok=Decimal(100), output_per_mtok=Decimal(300))},
        require=False,
    )
    workers = {
        "planner": agent_worker(Agent("planner", model=Priced("maxi", (1000, 100)), tools=[])),
        "helper": agent_worker(
            Agent("helper", model=Priced("nobody-priced-me", (40, 2)), tools=[])
        ),
    }
    plan = Plan(
        goal="g",
        steps=[
            Step(id="plan", task="plan it", agent="planner"),
            Step(id="help", task="help", agent="helper", depends_on=["plan"]),
        ],
    )
    executor = Executor(workers, store=SQLiteCheckpointStore(db), limits=Limits(prices=prices))
    outcome = asyncio.run(executor.run(plan, run_id="run-usage"))
    assert outcome.status == "done", outcome.reason
    return db, outcome.run_id


def test_runs_show_prints_usage_per_step_agent_and_run(run_db: tuple[Path, str]) -> None:
    db, run_id = run_db
    shown = CliRunner().invoke(app, ["runs", "show", run_id, "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in shown.output.splitlines()]
    rows = {row[0]: row[1:] for row in cells if row}
    # 1000 * 100/M + 100 * 300/M = 0.13 USD on the planner; the helper's model has no price
    for name in ("step plan", "agent planner"):
        assert rows[name] == ["1", "1,000", "100", "0.13"]
    assert rows["agent helper"] == ["1", "40", "2", "0"]
    assert rows["run total"] == ["2", "1,040", "102", "0.13"]
    assert "unpriced (counted as USD 0): nobody-priced-me" in shown.output


def test_runs_show_json_carries_the_usage(run_db: tuple[Path, str]) -> None:
    db, run_id = run_db
    shown = CliRunner().invoke(app, ["runs", "show", run_id, "--db", str(db), "--json"])
    assert shown.exit_code == 0, shown.output
    usage = json.loads(shown.output)["usage"]
    assert Decimal(usage["total"]["usd"]) == Decimal("0.13")
    assert usage["by_agent"]["planner"]["prompt_tokens"] == 1000
    assert usage["by_step"]["help"]["completion_tokens"] == 2
