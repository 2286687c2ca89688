"""vouch settings for the model layer: tiers, prices and budgets from env and vouch.toml."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from vouch import SettingsError, load_settings
from vouch.agents import (
    Agent,
    AgentBudgetExceeded,
    AgentCard,
    BudgetExceeded,
    HashingEmbedder,
    Message,
    Models,
    OfflineModel,
    OpenAIChatModel,
    OpenAIEmbedder,
    Registry,
    Step,
    Tool,
)

from .fake_openai import EMBED_DIMENSIONS, Answer, FakeOpenAI
from .test_memory_loop import ADDRESS, WINDOW, chat, is_summary


@pytest.fixture(autouse=True)
def _no_stray_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test reads only the env and vouch.toml it writes itself."""
    monkeypatch.chdir(tmp_path)


class NoArgs(BaseModel):
    pass


def ticker(ticks: list[int]) -> Tool:
    async def tick(_: NoArgs) -> str:
        ticks.append(1)
        return "again"

    return Tool(name="tick", description="tick", args_model=NoArgs, fn=tick)


PRICES = {
    "mini": {"input_per_mtok": "1", "output_per_mtok": "2"},
    "maxi": {"input_per_mtok": "100", "output_per_mtok": "300"},
}


def test_tiers_prices_and_budgets_from_the_environment(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("VOUCH_MODEL_NAME", "mini")
    monkeypatch.setenv("VOUCH_MODEL_TIMEOUT_SECONDS", "7")
    monkeypatch.setenv("VOUCH_MODEL_LARGE__NAME", "maxi")
    monkeypatch.setenv("VOUCH_MODEL_LARGE__TIMEOUT_SECONDS", "90")
    monkeypatch.setenv("VOUCH_MODEL_PRICES", json.dumps(PRICES))
    monkeypatch.setenv("VOUCH_BUDGET_USD", "0.25")
    monkeypatch.setenv("VOUCH_BUDGET_TOKENS", "100000")
    monkeypatch.setenv("VOUCH_AGENT_BUDGETS", '{"planner": {"usd": "0.1"}}')
    settings = load_settings()

    small, large = settings.endpoint("small"), settings.endpoint("large")
    assert small is not None and large is not None
    assert (small.model, small.timeout_seconds, small.base_url) == ("mini", 7.0, server.url)
    assert (large.model, large.timeout_seconds, large.base_url) == ("maxi", 90.0, server.url)
    assert settings.prices().cost("maxi", 1_000_000, 0) == Decimal(100)
    assert (settings.budget().usd, settings.budget().tokens) == (Decimal("0.25"), 100_000)
    assert settings.agent_budgets["planner"].usd == Decimal("0.1")
    limits = settings.limits(max_steps=5)
    assert limits.budget == settings.budget() and limits.max_steps == 5
    assert limits.agent_budgets["planner"].usd == Decimal("0.1")

    models = settings.models()
    server.then(Answer("a"), Answer("b"))
    for tier in ("large", "small"):
        model = models.for_tier(tier)  # type: ignore[arg-type]
        asyncio.run(model.complete([Message(role="user", content="hi")], []))
    assert [r["model"] for r in server.requests] == ["maxi", "mini"]


def test_tiers_prices_and_budgets_from_vouch_toml_and_env_wins(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "large.key"
    key.write_text("sk-large")
    key.chmod(0o600)
    (tmp_path / "vouch.toml").write_text(
        f"""
model_base_url = "{server.url}"
model_name = "mini"
budget_usd = 0.5
budget_tokens = 9000

[model_large]
base_url = "http://localhost:9/v1"
name = "maxi"
api_key_file = "{key}"
max_retries = 0

[model_prices.mini]
input_per_mtok = 1
output_per_mtok = 2

[model_prices.maxi]
input_per_mtok = 100
output_per_mtok = 300

[agent_budgets.settlement-agent]
tokens = 5000
"""
    )
    settings = load_settings()
    large = settings.endpoint("large")
    assert large is not None
    assert (large.base_url, large.model, large.max_retries) == ("http://localhost:9/v1", "maxi", 0)
    assert large.key() == "sk-large"
    small = settings.endpoint("small")
    assert small is not None and (small.base_url, small.model) == (server.url, "mini")
    assert settings.prices().cost("mini", 1_000_000, 1_000_000) == Decimal(3)
    assert settings.budget_usd == Decimal("0.5") and settings.budget_tokens == 9000
    assert settings.agent_budgets["settlement-agent"].tokens == 5000

    monkeypatch.setenv("VOUCH_BUDGET_USD", "0.01")
    monkeypatch.setenv("VOUCH_MODEL_LARGE__NAME", "mini")
    overridden = load_settings()
    assert overridden.budget_usd == Decimal("0.01")
    assert overridden.tier_model("large") == "mini"


def test_the_single_endpoint_variables_still_serve_both_tiers(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().endpoint("large") is None  # nothing configured: offline
    assert isinstance(load_settings().models().for_tier("small"), OfflineModel)
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("VOUCH_MODEL_NAME", "local-test-model")
    settings = load_settings()
    assert settings.endpoint("small") == settings.endpoint("large")
    model = settings.models().for_tier("small")
    assert isinstance(model, OpenAIChatModel) and model.name == "local-test-model"


def test_streaming_from_settings_per_tier(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("VOUCH_MODEL_STREAM", "true")
    monkeypatch.setenv("VOUCH_MODEL_LARGE__NAME", "maxi")
    monkeypatch.setenv("VOUCH_MODEL_LARGE__STREAM", "false")
    models = load_settings().models()
    server.then(Answer("streamed answer", usage=(5, 2)), Answer("whole answer"))
    small = asyncio.run(models.for_tier("small").complete([Message(role="user", content="a")], []))
    large = asyncio.run(models.for_tier("large").complete([Message(role="user", content="b")], []))
    assert (small.content, small.prompt_tokens, large.content) == (
        "streamed answer",
        5,
        "whole answer",
    )
    assert [r.get("stream", False) for r in server.requests] == [True, False]


def test_a_usd_budget_with_an_unpriced_model_is_refused_at_start(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("VOUCH_MODEL_NAME", "mini")
    monkeypatch.setenv("VOUCH_MODEL_LARGE__NAME", "maxi")
    monkeypatch.setenv("VOUCH_MODEL_PRICES", json.dumps({"mini": PRICES["mini"]}))
    assert load_settings().prices().require is False  # no USD budget: nothing to bypass
    monkeypatch.setenv("VOUCH_BUDGET_USD", "1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "budget_usd is a USD budget but model 'maxi' (large tier) has no price" in message
    assert "VOUCH_MODEL_PRICES" in message and '[model_prices."maxi"]' in message
    monkeypatch.delenv("VOUCH_BUDGET_USD")
    monkeypatch.setenv("VOUCH_AGENT_BUDGETS", '{"reviewer": {"usd": "0.2"}}')
    with pytest.raises(SettingsError, match=r"agent_budgets\['reviewer'\].usd .* 'maxi'"):
        load_settings()


def test_a_remote_endpoint_without_a_key_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOUCH_MODEL_LARGE__BASE_URL", "https://api.example.com/v1")
    with pytest.raises(SettingsError, match=r"large tier: no API key for https://api.example.com"):
        load_settings()
    monkeypatch.setenv("VOUCH_MODEL_LARGE__API_KEY", "sk-x")
    assert load_settings().endpoint("large") is not None


def test_a_key_file_others_can_read_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "openai.key"
    key.write_text("sk-from-file")
    key.chmod(0o644)
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", "https://api.example.com/v1")
    monkeypatch.setenv("VOUCH_MODEL_API_KEY_FILE", str(key))
    with pytest.raises(SettingsError, match=rf"small tier: API key file {key} is open to group"):
        load_settings()
    monkeypatch.setenv("VOUCH_MODEL_API_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(SettingsError, match="cannot read API key file .*missing.key"):
        load_settings()
    key.chmod(0o600)
    monkeypatch.setenv("VOUCH_MODEL_API_KEY_FILE", str(key))
    endpoint = load_settings().endpoint("large")
    assert endpoint is not None and endpoint.key() == "sk-from-file"


def small_output(settings: Any) -> Models:
    """The settings' models with 100 max_tokens per call on both tiers."""
    tiers = settings.models().settings
    return Models(tiers.model_copy(update={"small_max_tokens": 100, "large_max_tokens": 100}))


def test_a_run_over_its_usd_budget_from_settings_stops_over_http(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("VOUCH_MODEL_NAME", "maxi")
    monkeypatch.setenv("VOUCH_MODEL_PRICES", json.dumps(PRICES))
    monkeypatch.setenv("VOUCH_BUDGET_USD", "0.30")
    settings = load_settings()
    # each call: 1000 * 100/M + 100 * 300/M = 0.13 USD; the third crosses 0.30
    server.then(*[Answer(tool_calls=[("tick", "{}")], usage=(1000, 100)) for _ in range(10)])
    ticks: list[int] = []
    ledger = settings.ledger("run-settings")
    # the large tier's default max_tokens (4096 at 300/M: USD 1.23) cannot fit: nothing is sent
    agent = Agent(
        "spender", model=settings.models().for_tier("large"), tools=[ticker(ticks)], max_steps=10
    )
    with pytest.raises(BudgetExceeded, match=r"not sent: the call \(maxi: \d+ prompt \+ 4096 "):
        asyncio.run(agent.run("spend", ledger=ledger))
    assert server.chat_requests() == [] and ledger.records == []
    # with max_tokens 100 each call's worst case fits; the server's usage (1000 prompt
    # tokens, more than estimated) crosses the budget on the third call
    agent = Agent(
        "spender",
        model=small_output(settings).for_tier("large"),
        tools=[ticker(ticks)],
        max_steps=10,
    )
    with pytest.raises(BudgetExceeded, match=r"USD 0.39 > budget 0.30") as caught:
        asyncio.run(agent.run("spend", ledger=ledger))
    assert caught.value.spent_usd == Decimal("0.39")
    assert len(server.chat_requests()) == 3 and len(ticks) == 2
    assert all(r.priced and not r.estimated for r in ledger.records)  # the server's usage


def test_an_agent_over_its_own_budget_stops_while_the_run_has_room(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("VOUCH_MODEL_NAME", "maxi")
    monkeypatch.setenv("VOUCH_MODEL_PRICES", json.dumps(PRICES))
    monkeypatch.setenv("VOUCH_BUDGET_USD", "10")
    monkeypatch.setenv("VOUCH_AGENT_BUDGETS", '{"spender": {"usd": "0.2"}}')
    settings = load_settings()
    server.then(*[Answer(tool_calls=[("tick", "{}")], usage=(1000, 100)) for _ in range(10)])
    agent = Agent(
        "spender", model=small_output(settings).for_tier("small"), tools=[ticker([])], max_steps=10
    )
    with pytest.raises(AgentBudgetExceeded) as caught:
        asyncio.run(agent.run("spend", ledger=settings.ledger("run-agent")))
    assert caught.value.agent == "spender" and caught.value.spent_usd == Decimal("0.26")
    assert len(server.chat_requests()) == 2


def test_without_a_usd_budget_an_unpriced_model_is_charged_as_unpriced(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("VOUCH_MODEL_NAME", "nobody-priced-me")
    monkeypatch.setenv("VOUCH_BUDGET_TOKENS", "10000")
    settings = load_settings()
    server.then(Answer("done", usage=(40, 2)))
    ledger = settings.ledger("run-unpriced")
    asyncio.run(
        Agent("a", model=settings.models().for_tier("large"), tools=[]).run("hi", ledger=ledger)
    )
    [record] = ledger.records
    assert (record.priced, record.usd, record.prompt_tokens) == (False, Decimal(0), 40)


def test_embeddings_from_settings_serve_routing_and_long_term_memory_over_http(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("VOUCH_MODEL_EMBEDDINGS__NAME", "embed-test")
    monkeypatch.setenv("VOUCH_MODEL_EMBEDDINGS__DIMENSIONS", str(EMBED_DIMENSIONS))
    models = load_settings().models()
    embedder = models.embedder()
    assert isinstance(embedder, OpenAIEmbedder) and embedder.dimensions == EMBED_DIMENSIONS

    async def idle(_: object) -> str:
        return ""

    registry = Registry(embedder)  # the engine's semantic routing, on the configured embedder
    registry.add(
        AgentCard(name="payer", description="settle trades and pay", capabilities=["do"]), idle
    )
    registry.add(
        AgentCard(name="writer", description="write reports and notes", capabilities=["do"]), idle
    )
    route = asyncio.run(registry.route(Step(id="s", task="settle the WETH trade", capability="do")))
    assert (route.agent, route.by) == ("payer", "similarity")

    memory = models.long_term_memory(tmp_path / "memory.db")
    asyncio.run(memory.remember("Trade 17 settled at 3000 USDC.", "outcome"))
    [hit] = asyncio.run(memory.recall("how did trade 17 settle", k=1))
    assert hit.text == "Trade 17 settled at 3000 USDC."
    embedded = [r for r in server.requests if "input" in r]
    assert len(embedded) == 4 and {r["model"] for r in embedded} == {"embed-test"}


def test_embeddings_settings_are_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(load_settings().models().embedder(), HashingEmbedder)  # unset: offline
    monkeypatch.setenv("VOUCH_MODEL_EMBEDDINGS__NAME", "text-embedding-3-small")
    with pytest.raises(SettingsError, match="no endpoint serves it"):
        load_settings()
    monkeypatch.setenv("VOUCH_MODEL_EMBEDDINGS__BASE_URL", "https://api.example.com/v1")
    with pytest.raises(SettingsError, match="dimensions is needed"):
        load_settings()
    monkeypatch.setenv("VOUCH_MODEL_EMBEDDINGS__DIMENSIONS", "1536")
    with pytest.raises(SettingsError, match="embeddings: no API key for https://api.example.com"):
        load_settings()
    monkeypatch.setenv("VOUCH_MODEL_API_KEY", "sk-shared")
    endpoint = load_settings().embeddings_endpoint()
    assert endpoint is not None and endpoint.key() == "sk-shared"
    assert load_settings().endpoint("small") is None  # chat stays offline


def test_memory_from_settings_is_summarized_by_the_small_tier(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCH_MODEL_BASE_URL", server.url)
    monkeypatch.setenv("VOUCH_MODEL_SMALL__NAME", "mini")
    monkeypatch.setenv("VOUCH_MODEL_LARGE__NAME", "maxi")
    models = load_settings().models()
    memory = models.short_term_memory(window_tokens=WINDOW, keep_recent=4)
    agent = Agent(
        "assistant",
        model=models.for_tier("large"),
        tools=[],
        instructions="You help.",
        memory=memory,
    )
    answer = chat(agent, load_settings().ledger("run-memory"))
    assert ADDRESS in answer  # the early fact, answered from the summary
    summaries = [r for r in server.chat_requests() if is_summary(r)]
    assert summaries and {r["model"] for r in summaries} == {"mini"}
    assert {r["model"] for r in server.chat_requests() if not is_summary(r)} == {"maxi"}
