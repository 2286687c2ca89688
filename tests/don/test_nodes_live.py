"""The session DON's node processes: what `vouch don status` shows, their logs, their keys."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from vouch.cre_adapters import FeedWorkflow, IntervalTrigger, WorkflowSpec
from vouch.verifier import AttestationLog

from ..conftest import PASSWORD
from ..integration.helpers import vouch_cli
from .test_workflow_spec import session_cli_env

pytestmark = pytest.mark.integration


def one_round(env: Any, tmp_path: Path) -> tuple[str, set[str]]:
    """Run one feed round; return its request id and the signer addresses that took part."""
    spec = WorkflowSpec(
        name="status",
        trigger=IntervalTrigger(kind="interval", runs=1),
        capabilities=[{"feed": "ETH/USD"}],  # type: ignore[list-item]
    )
    log = AttestationLog(tmp_path / "feeds.db")
    (outcome,) = asyncio.run(FeedWorkflow(spec, env.don, log, timeout=5).run())
    observations = next(e for e in log.entries() if e.kind == "observations").payload
    observers = {o["observation"]["node"] for o in observations["observations"]}
    return str(observations["request_id"]), observers | set(outcome["report"]["signers"])


def test_status_shows_every_nodes_key_health_and_last_round(env: Any, tmp_path: Path) -> None:
    request_id, took_part = one_round(env, tmp_path)
    result = vouch_cli({**session_cli_env(env), "COLUMNS": "250"}, "don", "status", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {
        node.name: next(line for line in result.stdout.splitlines() if f" {node.name} " in line)
        for node in env.don.nodes
    }
    for node in env.don.nodes:
        row = rows[node.name]
        assert node.address in row and node.url in row and "ok" in row
        if node.address in took_part:
            assert request_id[:14] in row and "s ago" in row, row
    assert f"n={len(env.don.nodes)}, f={env.don.f}" in result.stdout


def test_every_node_logs_one_json_object_per_line(env: Any, tmp_path: Path) -> None:
    request_id, took_part = one_round(env, tmp_path)
    run_dir = env.settings.don_dir / "run"
    for node in env.don.nodes:
        lines = (run_dir / f"{node.name}.log").read_text().splitlines()
        events = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
        assert events and all(
            {"ts", "node", "level", "event"} <= set(e) and e["node"] == node.name for e in events
        )
        assert events[0]["event"] == "start" and events[0]["address"] == node.address
        if node.address in took_part:
            assert any(e.get("round") == request_id for e in events), node.name


def test_no_key_or_password_is_in_the_don_config_and_keystores_are_private(env: Any) -> None:
    config = env.stack.don_file.read_text()
    assert PASSWORD not in config
    for node, key in zip(env.don.nodes, env.node_keys(), strict=True):
        assert key.hex() not in config.lower()
        keystore = Path(node.keystore)
        assert str(keystore) in json.loads(config)["nodes"][env.don.nodes.index(node)]["keystore"]
        text = keystore.read_text()
        assert key.hex() not in text.lower() and "ciphertext" in text
        assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
