"""A settlement waits for a person: pause, decide in another process, resume; audit the decision."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ..attacker import rehashed
from .test_stack import demo_against

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def entries(home: Path) -> list[tuple[str, str, dict[str, object]]]:
    with sqlite3.connect(home / "attestations.db") as db:
        rows = db.execute("SELECT execution_id, kind, payload FROM entries ORDER BY seq")
        return [(e, k, json.loads(p)) for e, k, p in rows]


def paused_run(run: list[str], environ: dict[str, str]) -> str:
    """Start a demo that stops at the approval; return its run id."""
    result = subprocess.run(
        [*run, "demo", "settlement", "--no-approve"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "paused before the irreversible settlement" in result.stdout
    assert "settled in block" not in result.stdout
    listed = subprocess.run(
        [*run, "runs", "list"], env=environ, capture_output=True, text=True, check=False
    )
    waiting = [line.split()[1] for line in listed.stdout.splitlines() if "interrupted" in line]
    assert len(waiting) == 1, listed.stdout
    return waiting[0]


def test_approve_and_reject_across_processes_are_signed_logged_and_audited(
    evm, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    run, environ = demo_against(evm, home)
    try:
        # 1. paused above the threshold: escrowed, nothing attested or settled yet
        first = paused_run(run, environ)
        assert [k for _, k, _ in entries(home)] == ["proposal"]

        # 2. a person approves from another process: signature onchain, then the run settles
        approved = subprocess.run(
            [*run, "runs", "approve", first],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert "recorded onchain in tx" in approved.stdout
        assert "settlement settled" in approved.stdout
        log = entries(home)
        assert [k for _, k, _ in log] == [
            "proposal",
            "hitl",
            "observations",
            "consensus",
            "report",
            "submission",
        ]
        hitl = log[1][2]
        assert hitl["decision"] == "approved" and hitl["tx_hash"] and hitl["run_id"] == first
        assert (
            len({e for e, _, _ in log}) == 1
        )  # the decision is part of the settlement's execution

        # 3. the next one is rejected: a signed rejection, the run ends rejected, nothing settles
        second = paused_run(run, environ)
        rejected = subprocess.run(
            [*run, "runs", "reject", second, "--reason", "counterparty not vetted"],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        assert rejected.returncode == 0, rejected.stdout + rejected.stderr
        assert f"run {second}: rejected" in rejected.stdout
        log = entries(home)
        assert [k for _, k, _ in log[6:]] == ["proposal", "hitl"]
        assert log[-1][2]["decision"] == "rejected"
        assert log[-1][2]["note"] == "counterparty not vetted"

        # 4. at or below the threshold the approval is signed and logged, not needed onchain
        below = {**environ, "VOUCH_APPROVAL_THRESHOLD": "0"}
        settled = subprocess.run(
            [*run, "demo", "settlement"],
            env=below,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert settled.returncode == 0, settled.stdout + settled.stderr
        assert entries(home)[-5][2]["tx_hash"] is None

        # the auditor checks all three decisions against the approver's key and the gate
        audit = subprocess.run(
            [*run, "audit", "--json"], env=environ, capture_output=True, text=True, check=False
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        checks = [
            (r["seq"], r["check"], r["status"])
            for r in json.loads(audit.stdout)["results"]
            if r["kind"] == "hitl" and r["check"] != "anchored"
        ]
        assert [c for c in checks if c[1] == "decision onchain"] == [
            (2, "decision onchain", "ok"),
            (8, "decision onchain", "ok"),
            (10, "decision onchain", "ok"),
        ]
        assert all(status == "ok" for _, _, status in checks)

        # the operator drops the approval the gate required, and re-hashes the whole log
        forged = rehashed(
            home / "attestations.db", tmp_path, lambda rows: [r for r in rows if r[0] != 2]
        )
        attacked = subprocess.run(
            [*run, "audit", "--json", "--log", str(forged)],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        assert attacked.returncode == 1, attacked.stdout + attacked.stderr
        found = json.loads(attacked.stdout)["results"]
        assert not [r for r in found if r["check"] == "chain" and r["status"] == "fail"]
        sequence = {
            r["seq"]: r["detail"]
            for r in found
            if r["check"] == "entry sequence" and r["status"] == "fail"
        }
        assert list(sequence) == [2], sequence  # the observations, now #2: no approval before
        assert "no approving hitl" in sequence[2]
        shown = subprocess.run(
            [*run, "runs", "show", first, "--json"],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        body = json.loads(shown.stdout)
        assert body["status"] == "done"
        assert body["usage"]["total"]["prompt_tokens"] > 0
        assert "journal" not in body["steps"]["propose"]

        # replay recomputes the agent's side too: the recorded proposal and the trace it binds
        execution = entries(home)[0][0]
        replayed = subprocess.run(
            [*run, "replay", execution], env=environ, capture_output=True, text=True, check=False
        )
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert f"run {first}'s recorded proposal recomputes action hash" in replayed.stdout
        with sqlite3.connect(home / "runs.db") as db:  # someone edits what the agent proposed
            db.execute(
                "UPDATE steps SET body = replace(body, '1500000000000000000', '1500000000000000001')"
                " WHERE run_id = ? AND step_id = 'propose'",
                (first,),
            )
        replayed = subprocess.run(
            [*run, "replay", execution], env=environ, capture_output=True, text=True, check=False
        )
        assert replayed.returncode == 1, replayed.stdout
        assert "is not what run" in replayed.stdout and "action hash recomputes" in replayed.stdout
    finally:
        subprocess.run([*run, "down"], env=environ, capture_output=True, timeout=60, check=False)
