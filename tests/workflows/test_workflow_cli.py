"""`vouch workflow simulate` and `vouch secrets` as a user runs them (real processes, no chain)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.workflows.helpers import http_server, price

MODULE = """
from vouch.cre_adapters.workflow import Runtime, Workflow, interval, median

workflow = Workflow("cli")


@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> dict:
    got = rt.http.fetch(
        event["url"],
        headers={"X-Key": "{{secrets.API_KEY}}"},
        timeout=event.get("timeout", 5),
        parse=lambda r: {"price": r.json()["price"]},
        aggregate={"price": median()},
    )
    rt.evm.write(rt.report(["uint256"], [got["price"]]), receiver="0x000000000000000000000000000000000000bEEF", gas_limit=200_000)
    return got
"""


def simulate(
    tmp_path: Path, *args: str, secret: str = "s3cret-cli"
) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "wf.py"
    module.write_text(MODULE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")}
    env.update(VOUCH_HOME=str(tmp_path / "home"), VOUCH_SECRET_API_KEY=secret, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "vouch", "workflow", "simulate", str(module), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_simulate_runs_one_execution_in_one_process_without_a_chain(tmp_path: Path) -> None:
    with http_server(lambda seen, i: (200, price(4242), 0)) as server:
        done = simulate(tmp_path, "--event", json.dumps({"url": server.url}))
        seen = list(server.seen)
    assert done.returncode == 0, done.stderr
    assert "report: ['uint256'] = [4242], signed by 2 nodes" in done.stdout
    assert {s.headers["X-Key"] for s in seen} == {"s3cret-cli"}
    assert "s3cret-cli" not in done.stdout + done.stderr
    assert not (tmp_path / "home" / "attestations.db").exists()  # no log, no chain
    assert not (tmp_path / "home" / "chain").exists()  # no anvil started


def test_simulate_limits_name_the_quota_and_exit_1(tmp_path: Path) -> None:
    with http_server(lambda seen, i: (200, price(1), 0)) as server:
        done = simulate(
            tmp_path, "--limits", "--event", json.dumps({"url": server.url, "timeout": 20})
        )
        assert not server.seen
    assert done.returncode == 1
    assert "PerWorkflow.HTTPAction.ConnectionTimeout exceeded" in done.stderr
    assert "the limit is 10" in done.stderr


def test_simulate_refuses_an_event_that_is_not_json(tmp_path: Path) -> None:
    done = simulate(tmp_path, "--event", "{nope")
    assert done.returncode == 1
    assert "--event is not JSON" in done.stderr
