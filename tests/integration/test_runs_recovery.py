"""Runs that stopped show their real state, decisions are idempotent, refunds happen once.

Each test is a vouch home of its own (contracts, DON) on the session's anvil,
driven through the command line in child processes as a user would.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import align_clock
from .test_hitl_runs import entries, paused_run
from .test_stack import demo_against

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def vouch(run: list[str], environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*run, *args], env=environ, capture_output=True, text=True, timeout=1200, check=False
    )


def listed(run: list[str], environ: dict[str, str], run_id: str) -> str:
    out = vouch(run, environ, "runs", "list").stdout
    return " ".join(line for line in out.splitlines() if run_id in line or "│" in line)


def kinds(home: Path) -> list[str]:
    return [k for _, k, _ in entries(home)]


def balance(evm: Any, token: str, holder: str, home: Path) -> int:
    manifest = json.loads((home / "deployments" / f"{evm.chain.chain_id}.json").read_text())
    erc20 = evm.contract("TestToken", manifest["contracts"][token])
    return int(erc20.functions.balanceOf(holder).call())


def trade_of(evm: Any, home: Path, trade_id: int) -> Any:
    manifest = json.loads((home / "deployments" / f"{evm.chain.chain_id}.json").read_text())
    gate = evm.contract("SettlementGate", manifest["contracts"]["SettlementGate"])
    return gate.functions.getTrade(trade_id).call()


def test_a_decision_taken_twice_logs_once_and_resume_settles_once(evm: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run, environ = demo_against(evm, home)
    try:
        run_id = paused_run(run, environ)
        assert "waiting for a decision" in listed(run, environ, run_id)
        # approved, then the process stops before resuming (as a kill after approval would)
        first = vouch(run, environ, "runs", "approve", run_id, "--no-resume")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "recorded onchain in tx" in first.stdout
        assert kinds(home) == ["proposal", "hitl"]
        state = listed(run, environ, run_id)
        assert "approved; interrupted in step settle" in state and "runs resume" in state

        # approving again: nothing signed, sent or logged; it says so
        again = vouch(run, environ, "runs", "approve", run_id, "--no-resume")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already approved" in again.stdout
        assert "no onchain approval needed" not in again.stdout
        assert kinds(home) == ["proposal", "hitl"]

        # a crash between logging the decision and checkpointing it: the log's decision stands
        with sqlite3.connect(home / "runs.db") as db:
            db.execute("DELETE FROM decisions WHERE run_id = ?", (run_id,))
        assert "waiting for a decision" in listed(run, environ, run_id)
        third = vouch(run, environ, "runs", "approve", run_id, "--no-resume")
        assert third.returncode == 0, third.stdout + third.stderr
        assert "already in the log" in third.stdout
        assert kinds(home) == ["proposal", "hitl"]

        align_clock(evm)
        resumed = vouch(run, environ, "runs", "resume", run_id)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "settlement settled" in resumed.stdout
        settled = kinds(home)
        assert settled == ["proposal", "hitl", "observations", "consensus", "report", "submission"]
        twice = vouch(run, environ, "runs", "resume", run_id)
        assert twice.returncode == 0, twice.stdout + twice.stderr
        assert "nothing to resume" in twice.stdout and "is Settled" in twice.stdout
        assert kinds(home) == settled
        audit = vouch(run, environ, "audit")
        assert audit.returncode == 0, audit.stdout + audit.stderr
    finally:
        vouch(run, environ, "down")


def test_a_rejected_trade_is_refunded_once_logged_and_audited(evm: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run, environ = demo_against(evm, home)
    try:
        run_id = paused_run(run, environ)
        rejected = vouch(run, environ, "runs", "reject", run_id, "--reason", "not vetted")
        assert rejected.returncode == 0, rejected.stdout + rejected.stderr
        trade_id = int(entries(home)[0][2]["trade_id"])
        terms = trade_of(evm, home, trade_id)
        seller, buyer, base, max_quote = terms[0], terms[1], int(terms[3]), int(terms[7])
        assert terms[12] == 2  # Funded: the rejection alone returns nothing
        assert "stays escrowed until refunded" in listed(run, environ, run_id)
        shown = vouch(run, environ, "trades", "show", str(trade_id))
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "Funded" in shown.stdout and "#2 hitl" in shown.stdout

        early = vouch(run, environ, "trades", "refund", str(trade_id))
        assert early.returncode == 1 and "refundable after its deadline" in early.stderr
        assert kinds(home) == ["proposal", "hitl"]

        evm.w3.provider.make_request("evm_increaseTime", [3600])  # past the deadline
        evm.w3.provider.make_request("evm_mine", [])
        refunded = vouch(run, environ, "runs", "resume", run_id)
        assert refunded.returncode == 0, refunded.stdout + refunded.stderr
        assert f"refunded trade #{trade_id}" in refunded.stdout
        assert trade_of(evm, home, trade_id)[12] == 4  # Refunded
        assert balance(evm, "WETH", seller, home) == base
        assert balance(evm, "USDC", buyer, home) == max_quote
        log = entries(home)
        assert [k for _, k, _ in log] == ["proposal", "hitl", "refund"]
        assert len({e for e, _, _ in log}) == 1  # tied to the trade's execution
        refund = log[-1][2]
        assert refund["trade_id"] == trade_id and refund["caller"] == seller
        assert refund["base_amount"] == base and refund["quote_amount"] == max_quote
        assert (
            refund["reason"].startswith("rejected by approver") and "not vetted" in refund["reason"]
        )

        for again in (["trades", "refund", str(trade_id)], ["runs", "resume", run_id]):
            second = vouch(run, environ, *again)
            assert second.returncode == 0, second.stdout + second.stderr
            assert "already refunded" in second.stdout or "nothing to resume" in second.stdout
        assert kinds(home) == ["proposal", "hitl", "refund"]
        listing = vouch(run, environ, "trades", "list")
        assert listing.returncode == 0 and "Refunded" in listing.stdout
        audit = vouch(run, environ, "audit")
        assert audit.returncode == 0, audit.stdout + audit.stderr
    finally:
        vouch(run, environ, "down")


def test_reading_trades_with_the_chain_down_starts_nothing_and_exits_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    environ = {"VOUCH_HOME": str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    import os
    import sys

    environ = {**os.environ, **environ}
    for args in (["trades", "list"], ["trades", "show", "1"]):
        result = subprocess.run(
            [sys.executable, "-m", "vouch", *args],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "vouch chain up" in result.stderr
        assert not (home / "chain" / "anvil.json").exists()  # no anvil was started
