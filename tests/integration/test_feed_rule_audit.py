"""A real feed workflow on the session DON logs its deviation/heartbeat rule; the audit recomputes it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from vouch.cre_adapters import FeedWorkflow, IntervalTrigger, WorkflowSpec
from vouch.verifier import AttestationLog, audit

pytestmark = pytest.mark.integration


def test_a_feed_workflows_verdicts_recompute_from_the_logged_rule(env: Any, tmp_path: Path) -> None:
    spec = WorkflowSpec(
        name="ruled",
        trigger=IntervalTrigger(kind="interval", runs=3, every=0.1),
        capabilities=[{"feed": "ETH/USD"}],  # type: ignore[list-item]
        consensus={"mode": "median", "deviation_bps": 500, "heartbeat": 3600},  # type: ignore[arg-type]
    )
    log = AttestationLog(tmp_path / "feeds.db")
    asyncio.run(FeedWorkflow(spec, env.don, log, timeout=5).run())
    decided = [e for e in log.entries() if e.kind in ("consensus", "skipped")]
    assert [e.kind for e in decided] == ["consensus", "skipped", "skipped"]  # moves under 5%
    rules = [e.payload["rule"] for e in decided]
    assert all((r["deviation_bps"], r["heartbeat"]) == (500, 3600) for r in rules)
    assert rules[0]["previous"] is None
    first = decided[0]
    expected = {"seq": first.seq, "value": first.payload["value"], "at": rules[0]["at"]}
    assert rules[1]["previous"] == rules[2]["previous"] == expected

    signers = {(env.don.don_id, env.don.config_version): (env.don.f, env.don.signers)}
    report = audit(log, None, signers=signers)
    assert report.ok, report.failures
    verdicts = [f.detail for f in report.results if f.check == "feed rule"]
    assert len(verdicts) == 3 and verdicts[0].endswith("first report")
    assert all(v.endswith(": skip") for v in verdicts[1:])

    forged = AttestationLog(tmp_path / "forged.db")  # the operator claims round 2 reported
    for entry in log.entries():
        kind, payload = entry.kind, entry.payload
        if entry.seq == decided[1].seq:
            kind, payload["why"] = "consensus", "deviation: moved more than 500 bps"
        forged.append(entry.execution_id, kind, payload)
    failed = {(f.seq, f.check): f.detail for f in audit(forged, None, signers=signers).failures}
    assert "the rule says 'skip'" in failed[(decided[1].seq, "feed rule")]
