"""Building blocks for integration tests: proposals, trades, workflows, hand-made reports."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

from vouch import ChainSubmitter, action_hash
from vouch._agent_settlement import ActionProposal, FactRequest, SettlementParams
from vouch.cre_adapters import SettlementJob, SettlementOutcome, SettlementWorkflow
from vouch.verifier import (
    AttestationLog,
    ReportBody,
    ReportMetadata,
    SettlementPayload,
    encode_report,
    execution_id,
    report_context,
    report_digest,
    sign_report,
)

ONE = 10**18


def proposal(
    min_price: int = 1_000, max_price: int = 10_000, amount: float = 1.5
) -> ActionProposal:
    return ActionProposal(
        params=SettlementParams(
            base_token="WETH",
            quote_token="USDC",
            base_amount=int(amount * ONE),
            min_price=min_price * ONE,
            max_price=max_price * ONE,
            deadline_seconds=600,
        ),
        facts=[FactRequest(feed="ETH/USD")],
        rationale="test",
    )


def workflow(env: Any, log: AttestationLog) -> SettlementWorkflow:
    return SettlementWorkflow(env.don, env.deployment, env.artifacts, env.writer, log, timeout=3.0)


def submitter(env: Any, log: AttestationLog) -> ChainSubmitter:
    return ChainSubmitter(
        workflow(env, log), env.writer, env.artifacts, env.deployment, log, lambda k, d: None
    )


def settle(env: Any, log: AttestationLog, p: ActionProposal | None = None) -> SettlementOutcome:
    sub = submitter(env, log)
    asyncio.run(sub.submit(p or proposal()))
    assert sub.last_outcome is not None
    return sub.last_outcome


def open_trade(env: Any, log: AttestationLog, p: ActionProposal | None = None) -> tuple[int, str]:
    p = p or proposal()
    digest = action_hash(p)
    return submitter(env, log).open_trade(p, digest), digest


def run_job(env: Any, log: AttestationLog, trade_id: int, digest: str) -> SettlementOutcome:
    return asyncio.run(workflow(env, log).run(SettlementJob(trade_id=trade_id, action_hash=digest)))


def hand_made_report(
    env: Any, trade_id: int, digest: str, price: int
) -> tuple[bytes, bytes, bytes]:
    """A report built exactly as the DON builds it; returns (raw, context, digest to sign)."""
    wf = env.deployment.workflow
    now = int(time.time())
    seq = time.time_ns()
    exec_id = execution_id(bytes.fromhex(wf.id[2:]), bytes.fromhex(digest[2:]), seq)
    meta = ReportMetadata(
        version=1,
        execution_id=exec_id,
        timestamp=now,
        don_id=env.don.don_id,
        config_version=env.don.config_version,
        workflow_id=bytes.fromhex(wf.id[2:]),
        workflow_name=wf.name,
        workflow_owner=wf.owner,
        report_id=bytes.fromhex(wf.report_id[2:]),
    )
    body = ReportBody(
        chain_id=env.deployment.chain_id,
        receiver=env.deployment.address("SettlementGate"),
        timestamp=now,
        action_hash=bytes.fromhex(digest[2:]),
        payload=SettlementPayload(trade_id=trade_id, price=price).encode(),
    )
    raw = encode_report(meta, body)
    context = report_context(env.don.digest(), seq)
    return raw, context, report_digest(raw, context)


def signed_by(keys: list[bytes], digest: bytes) -> list[bytes]:
    return [sign_report(digest, key) for key in keys]


def vouch_cli(
    environ: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``vouch ARGS`` in a child process with ``environ``; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "vouch", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def align_clock(evm: Any) -> None:
    """Put anvil's clock forward onto this machine's if it lags (reports carry wall-clock time).

    In this sandbox anvil's block time falls behind the wall clock by minutes
    over a long test; a report stamped by the nodes then looks like it comes
    from the future (ReportFromFuture). Real chains do not lag like that.
    """
    now = int(time.time())
    if int(evm.w3.eth.get_block("latest")["timestamp"]) < now:
        evm.w3.provider.make_request("evm_setTime", [now])  # type: ignore[arg-type]
