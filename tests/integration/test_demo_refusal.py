"""`vouch demo refusal`: refused onchain, refunded after the deadline, balances back, audit clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .test_hitl_runs import entries
from .test_runs_recovery import balance, trade_of, vouch
from .test_stack import demo_against

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_refusal_demo_refunds_both_legs_and_the_audit_passes(evm: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run, environ = demo_against(evm, home)
    try:
        demo = vouch(run, environ, "demo", "refusal")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "refused in block" in demo.stdout and "PriceOutOfBounds" in demo.stdout
        assert "refunded in tx" in demo.stdout
        log = entries(home)
        assert [k for _, k, _ in log if k != "retry"] == [
            "proposal",
            "hitl",
            "observations",
            "consensus",
            "report",
            "submission",
            "refund",
        ]
        submission, refund = log[-2][2], log[-1][2]
        assert submission["status"] == "refused"
        assert submission["error"]["name"] == "PriceOutOfBounds"
        trade_id = int(log[0][2]["trade_id"])
        terms = trade_of(evm, home, trade_id)
        assert terms[12] == 4  # Refunded, onchain
        seller, buyer, base, max_quote = terms[0], terms[1], int(terms[3]), int(terms[7])
        assert balance(evm, "WETH", seller, home) == base  # the seller has its WETH back
        assert balance(evm, "USDC", buyer, home) == max_quote  # the buyer its USDC
        manifest = json.loads((home / "deployments" / f"{evm.chain.chain_id}.json").read_text())
        gate = manifest["contracts"]["SettlementGate"]
        assert balance(evm, "WETH", gate, home) == 0 and balance(evm, "USDC", gate, home) == 0
        assert refund["trade_id"] == trade_id and refund["reason"].startswith(
            "refused onchain: PriceOutOfBounds"
        )
        assert refund["base_amount"] == base and refund["quote_amount"] == max_quote
        audit = vouch(run, environ, "audit", "--json")
        assert audit.returncode == 0, audit.stdout + audit.stderr
        results = json.loads(audit.stdout)["results"]
        assert any("refunded" in str(r.get("detail", "")) for r in results), results
    finally:
        vouch(run, environ, "down")
