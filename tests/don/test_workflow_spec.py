"""Workflow specs (the legacy feed engine): loading, interval and EVM-log triggers on the session
DON, and the audit of the logs they write. The CLI refuses specs: tests/workflows/test_spec_replaced.py."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from vouch.cre_adapters import (
    ConfigError,
    EvmLogTrigger,
    FeedWorkflow,
    IntervalTrigger,
    QuorumNotReached,
    TargetSpec,
    WorkflowSpec,
)
from vouch.verifier import AttestationLog, recover_observation_signer
from vouch.verifier import SignedObservation as Signed

from ..conftest import PASSWORD
from ..integration.helpers import vouch_cli
from .conftest import SetFault

ONE = 10**18
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

TOML = """
name = "eth-feed"
[trigger]
kind = "interval"
every = 0.1
runs = 3
[[capabilities]]
feed = "ETH/USD"
[[capabilities]]
feed = "BTC/USD"
[consensus]
mode = "median"
deviation_bps = 500
heartbeat = 3600
"""


def session_cli_env(env: Any) -> dict[str, str]:
    """The environment of a `vouch` command on the session's home, chain and settings."""
    return {
        **os.environ,
        "VOUCH_HOME": str(env.settings.home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "VOUCH_APPROVAL_THRESHOLD": "0",  # the session's settings (the CLI applies its policy)
        "COLUMNS": "200",
    }


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_and_json_load_to_the_same_spec(tmp_path: Path) -> None:
    spec = WorkflowSpec.load(write(tmp_path, "w.toml", TOML))
    assert isinstance(spec.trigger, IntervalTrigger) and spec.trigger.runs == 3
    assert [c.feed for c in spec.capabilities] == ["ETH/USD", "BTC/USD"]
    assert spec.target.kind == "log"
    again = WorkflowSpec.load(write(tmp_path, "w.json", spec.model_dump_json()))
    assert again == spec


def test_invalid_spec_names_the_field(tmp_path: Path) -> None:
    bad = TOML.replace('feed = "BTC/USD"', 'feed = "btc"')
    with pytest.raises(ConfigError, match="capabilities.1.feed"):
        WorkflowSpec.load(write(tmp_path, "w.toml", bad))
    with pytest.raises(ConfigError, match="does not parse"):
        WorkflowSpec.load(write(tmp_path, "w.toml", "name = "))
    with pytest.raises(ConfigError, match="trigger"):
        WorkflowSpec.load(write(tmp_path, "w.json", json.dumps({"name": "x", "capabilities": []})))


def test_yaml_without_pyyaml_says_what_to_do(tmp_path: Path) -> None:
    try:
        import yaml  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="PyYAML is not installed"):
            WorkflowSpec.load(write(tmp_path, "w.yaml", "name: x"))
    else:
        assert WorkflowSpec.load(
            write(
                tmp_path,
                "w.yaml",
                "name: x\ntrigger: {kind: interval}\ncapabilities: [{feed: ETH/USD}]",
            )
        )


def test_a_target_names_the_one_call_it_delivers_to_or_is_refused(tmp_path: Path) -> None:
    assert TargetSpec(kind="settlement").call == ("SettlementGate", "onReport")
    named = TargetSpec(kind="settlement", contract="SettlementGate", function="onReport")
    assert named.call == ("SettlementGate", "onReport")
    assert TargetSpec().call is None  # a log target: the attestation log only
    for target, needle in (
        ('kind = "settlement"\nfunction = "withdraw"', "delivers to SettlementGate.onReport"),
        ('kind = "settlement"\ncontract = "Vault"', "not Vault.onReport"),
        ('kind = "log"\ncontract = "SettlementGate"', "names no contract or function"),
    ):
        spec = write(tmp_path, "t.toml", TOML + "[target]\n" + target + "\n")
        with pytest.raises(ConfigError, match=needle):
            WorkflowSpec.load(spec)


def test_a_consensus_deadline_loads_and_is_bounded(tmp_path: Path) -> None:
    spec = WorkflowSpec.load(write(tmp_path, "w.toml", TOML + "deadline = 0.5\n"))
    assert spec.consensus.deadline == 0.5
    with pytest.raises(ConfigError, match="consensus.deadline"):
        WorkflowSpec.load(write(tmp_path, "w.toml", TOML + "deadline = 0\n"))


@pytest.mark.integration
def test_the_specs_deadline_bounds_each_nodes_answer(
    env: Any, tmp_path: Path, fault: SetFault
) -> None:
    """f slow nodes: the round goes on without them; f+1: refused at the spec's deadline."""
    text = TOML.replace("runs = 3", "runs = 1") + "deadline = 0.5\n"
    spec = WorkflowSpec.load(write(tmp_path, "w.toml", text))
    log = AttestationLog(tmp_path / "feeds.db")
    fault("node-4", mode="slow", delay=3)
    (outcome,) = asyncio.run(FeedWorkflow(spec, env.don, log, timeout=30).run())
    assert outcome["report"] is not None
    fault("node-3", mode="slow", delay=3)
    with pytest.raises(QuorumNotReached) as info:
        asyncio.run(FeedWorkflow(spec, env.don, log, timeout=30).run())
    assert info.value.failures == {
        "node-3": "no answer within 0.5s",
        "node-4": "no answer within 0.5s",
    }


@pytest.mark.integration
def test_interval_workflow_logs_signed_rounds_and_skips_small_moves(
    env: Any, tmp_path: Path
) -> None:
    spec = WorkflowSpec.load(write(tmp_path, "w.toml", TOML))
    log = AttestationLog(tmp_path / "feeds.db")
    outcomes = asyncio.run(FeedWorkflow(spec, env.don, log, timeout=3).run())
    assert len(outcomes) == 3
    first = outcomes[0]["feeds"]
    assert first["ETH/USD"]["reported"] and first["BTC/USD"]["reported"]
    assert 2_800 * ONE < first["ETH/USD"]["value"] < 3_200 * ONE
    assert not outcomes[1]["feeds"]["ETH/USD"]["reported"]  # moved less than 5%
    kinds = [e.kind for e in log.entries()]
    assert kinds.count("observations") == 6 and kinds.count("skipped") == 4
    assert kinds.count("report") == 1  # only the first firing reported: one report, both feeds
    assert outcomes[0]["report"] is not None and outcomes[1]["report"] is None
    for entry in log.entries():
        if entry.kind == "observations":
            obs = entry.payload["observations"]
            assert len(obs) == env.don.quorum
            assert {recover_observation_signer(Signed.model_validate(o)) for o in obs} <= set(
                env.don.signers
            )
            check_latencies(entry.payload)


def check_latencies(payload: dict[str, Any]) -> None:
    """Every observer's answer latency is logged, in whole ms (what the HTML report plots) and us."""
    observers = {o["observation"]["node"] for o in payload["observations"]}
    assert set(payload["latency_ms"]) == observers == set(payload["latency_us"])
    for node in observers:
        ms, us = payload["latency_ms"][node], payload["latency_us"][node]
        assert isinstance(ms, int) and isinstance(us, int) and 0 < us < 3_000_000
        assert ms == round(us / 1000) or abs(ms - us / 1000) <= 1


@pytest.mark.integration
def test_evm_log_trigger_reacts_to_an_event_emitted_on_anvil(evm: Any, tmp_path: Path) -> None:
    weth = evm.contract("TestToken", evm.deployment.address("WETH"))
    spec = WorkflowSpec(
        name="on-xfer",
        trigger=EvmLogTrigger(
            kind="evm-log", address=weth.address, topic=TRANSFER, poll=0.1, timeout=30
        ),
        capabilities=[{"feed": "ETH/USD"}],  # type: ignore[list-item]
    )
    log = AttestationLog(tmp_path / "feeds.db")
    runner = FeedWorkflow(spec, evm.don, log, rpc_url=evm.chain.url, timeout=3)

    async def scenario() -> list[dict[str, Any]]:
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.5)  # the runner is watching from the current block
        receipt = await asyncio.to_thread(
            evm.writer.transact, weth.functions.mint(evm.writer.address, ONE)
        )
        outcomes = await task
        assert outcomes[0]["cause"]["tx"] == "0x" + bytes(receipt["transactionHash"]).hex()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes[0]["cause"]["kind"] == "evm-log"
    assert outcomes[0]["feeds"]["ETH/USD"]["reported"]
    assert [e.kind for e in log.entries()] == ["observations", "consensus", "report"]
    assert log.get(1).payload["cause"]["block"] == outcomes[0]["cause"]["block"]


YAML = """
name: eth-feed
trigger: {kind: interval, every: 0.1, runs: 1}
capabilities:
  - feed: ETH/USD
  - feed: BTC/USD
consensus: {mode: median, deviation_bps: 500, heartbeat: 3600}
"""


@pytest.mark.integration
@pytest.mark.parametrize("form", ["toml", "yaml"])
def test_a_feed_log_written_by_a_spec_stays_auditable(env: Any, tmp_path: Path, form: str) -> None:
    """Specs are refused by the CLI now (tests/workflows/test_spec_replaced.py); the logs
    they wrote still audit: the legacy engine writes one here, `vouch audit --log` checks it."""
    text = TOML.replace("runs = 3", "runs = 1") if form == "toml" else YAML
    spec = WorkflowSpec.load(write(tmp_path, f"w.{form}", text))
    log = AttestationLog(tmp_path / "f.db")
    [outcome] = asyncio.run(FeedWorkflow(spec, env.don, log, timeout=10).run())
    assert outcome["status"] == "signed", outcome
    kinds = [e.kind for e in log.entries()]
    assert kinds.count("consensus") == 2 and kinds.count("report") == 1
    # two feeds in one execution, a feeds report: all re-verified
    environ = session_cli_env(env)
    audited = vouch_cli(environ, "audit", "--json", "--log", str(tmp_path / "f.db"), timeout=120)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    checks = {(r["check"], r["status"]) for r in json.loads(audited.stdout)["results"]}
    assert ("consensus recomputed", "ok") in checks and ("report contents", "ok") in checks
