"""The stack a command brings up: an existing RPC instead of anvil, the manifest, the compile cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vouch.cre_adapters.evm import compile_contracts

from ..conftest import PASSWORD, copy_cache

pytestmark = pytest.mark.integration


def demo_against(evm, home: Path, **env: str) -> tuple[list[str], dict[str, str]]:
    """The vouch command line and environment for a demo in ``home`` on the session's chain."""
    copy_cache(evm.settings.home / "cache", home)
    environ = {
        **os.environ,
        "VOUCH_HOME": str(home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "COLUMNS": "200",
        **env,
    }
    return [sys.executable, "-m", "vouch", "--rpc-url", evm.chain.url], environ


def test_demo_runs_against_an_existing_rpc_url(evm, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run, environ = demo_against(evm, home)
    try:
        result = subprocess.run(
            [*run, "demo", "settlement"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "managed anvil" not in result.stdout
        assert not (home / "chain" / "anvil.json").exists()
        manifest = json.loads((home / "deployments" / f"{evm.chain.chain_id}.json").read_text())
        assert manifest["rpc_url"] == evm.chain.url
        assert set(manifest["contracts"]) == {
            "Forwarder",
            "SettlementGate",
            "FeedConsumer",
            "AttestationAnchor",
            "WETH",
            "USDC",
        }
        feeds = manifest[
            "feed_workflow"
        ]  # the workflow FeedConsumer accepts, owned by the deployer
        assert feeds["name"] == "feeds" and feeds["owner"] == manifest["deployer"]
        consumer = evm.contract("FeedConsumer", manifest["contracts"]["FeedConsumer"])
        config = consumer.functions.getReceiverConfig().call()  # type: ignore[attr-defined]
        assert config[0] == manifest["contracts"]["Forwarder"] and config[1] == feeds["owner"]
        assert "0x" + config[2].hex() == feeds["id"]
        assert manifest["don"]["f"] == 1 and len(manifest["don"]["signers"]) == 4
        assert manifest["block"] > 0 and manifest["chain_id"] == 31337
        code = evm.w3.eth.get_code(manifest["contracts"]["Forwarder"])
        assert len(code) > 0
    finally:
        subprocess.run([*run, "down"], env=environ, capture_output=True, timeout=60, check=False)


def test_an_rpc_url_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    environ = {**os.environ, "VOUCH_HOME": str(tmp_path), "VOUCH_RPC_URL": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "vouch", "demo", "settlement"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no chain answers at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_settings_name_the_setting(tmp_path: Path) -> None:
    environ = {**os.environ, "VOUCH_HOME": str(tmp_path), "VOUCH_NODES": "4", "VOUCH_F": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "vouch", "chain", "status"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "VOUCH_F:" in result.stderr and "3f+1" in result.stderr  # named where it was set


def test_artifacts_are_cached_by_source_hash(env, tmp_path: Path, monkeypatch) -> None:
    first = compile_contracts(env.stack.toolchain, env.settings.home / "cache")
    import solcx

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("solc ran although the sources did not change")

    monkeypatch.setattr(solcx, "compile_standard", refuse)
    second = compile_contracts(env.stack.toolchain, env.settings.home / "cache")
    assert second == first
    assert (env.settings.home / "cache" / f"artifacts-{first.source_hash[:16]}.json").exists()


def test_demo_can_use_any_openai_compatible_endpoint(evm, tmp_path: Path) -> None:
    from vouch._demo import DEFAULT_GOAL
    from vouch.agents import SQLiteCheckpointStore

    from ..agents.fake_openai import Answer, FakeOpenAI, serve

    # the hosted model plans (its own step ids; the workers must not care), then answers
    # like the offline model
    steps = [
        {"id": "p1", "task": DEFAULT_GOAL, "agent": "settlement-agent"},
        {"id": "e1", "task": "escrow it", "agent": "escrow", "depends_on": ["p1"]},
        {"id": "s1", "task": "settle it", "agent": "settle", "depends_on": ["e1"]},
    ]
    planned = Answer(tool_calls=[("submit_plan", json.dumps({"steps": steps}))])
    server_gen = serve(FakeOpenAI().then(planned))
    server = next(server_gen)
    home = tmp_path / "home"
    run, environ = demo_against(
        evm, home, VOUCH_MODEL_BASE_URL=server.url, VOUCH_MODEL_NAME="local-test-model"
    )
    try:
        result = subprocess.run(
            [*run, "demo", "settlement"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "local-test-model" in result.stdout and "settled" in result.stdout
        requests = server.chat_requests()
        assert requests and requests[0]["model"] == "local-test-model"
        assert [t["function"]["name"] for t in requests[0]["tools"]] == ["submit_plan"]
        assert any(t["function"]["name"] == "propose_settlement" for t in requests[1]["tools"])
        [record] = SQLiteCheckpointStore(home / "runs.db").list_runs()
        assert record.plan is not None and [s.id for s in record.plan.steps] == ["p1", "e1", "s1"]
        listed = subprocess.run(
            [*run, "runs", "list"], env=environ, capture_output=True, text=True, check=False
        )
        run_id = next(line.split()[1] for line in listed.stdout.splitlines() if " done " in line)
        shown = subprocess.run(
            [*run, "runs", "show", run_id], env=environ, capture_output=True, text=True, check=False
        )
        assert "agent settlement-agent" in shown.stdout  # usage per agent, from the run's records
        assert "unpriced (counted as USD 0): local-test-model" in shown.stdout
    finally:
        subprocess.run([*run, "down"], env=environ, capture_output=True, timeout=60, check=False)
        server_gen.close()
