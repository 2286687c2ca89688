"""`vouch demo byzantine`: 7 nodes, f=2 faulty settle at the honest price; f+1 refused, refunded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .test_hitl_runs import entries
from .test_runs_recovery import balance, trade_of, vouch
from .test_stack import demo_against

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ONE = 10**18


def test_byzantine_demo_settles_then_refunds_and_the_audit_passes(evm: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run, environ = demo_against(evm, home)
    try:
        demo = vouch(run, environ, "demo", "byzantine")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        log = entries(home)
        proposals = [(e, p) for e, k, p in log if k == "proposal"]
        assert len(proposals) == 2
        (first, one), (second, two) = proposals

        # act 1: settled at the honest median; the liar and the equivocator left out, named
        act1 = [(k, p) for e, k, p in log if e == first]
        submission = [p for k, p in act1 if k == "submission"][-1]
        assert submission["status"] == "settled"
        price = [p for k, p in act1 if k == "consensus"][-1]["value"]
        assert 2_850 * ONE <= price <= 3_150 * ONE  # the market (+-4% of 3,000), not a lie
        observed = [p for k, p in act1 if k == "observations"][-1]
        named = {i["node"] for i in observed.get("evidence", []) + observed.get("absent", [])}
        assert {"node-6", "node-7"} <= named, observed
        terms = trade_of(evm, home, int(one["trade_id"]))
        assert terms[12] == 3  # Settled
        seller, buyer, base = terms[0], terms[1], int(terms[3])
        assert balance(evm, "WETH", buyer, home) == base
        assert balance(evm, "USDC", seller, home) == base * price // ONE

        # act 2: no quorum, nothing submitted, refunded once the deadline passed
        act2 = [(k, p) for e, k, p in log if e == second]
        assert "submission" not in [k for k, _ in act2]
        assert [k for k, _ in act2][-1] == "refund" and "aborted" in [k for k, _ in act2]
        terms = trade_of(evm, home, int(two["trade_id"]))
        assert terms[12] == 4  # Refunded
        assert balance(evm, "WETH", terms[0], home) == int(terms[3])
        assert balance(evm, "USDC", terms[1], home) == int(terms[7])
        manifest = json.loads((home / "deployments" / f"{evm.chain.chain_id}.json").read_text())
        assert manifest["don"]["f"] == 2 and len(manifest["don"]["signers"]) == 7

        audit = vouch(run, environ, "audit", "--json")
        assert audit.returncode == 0, audit.stdout + audit.stderr
        # the audit re-verifies the logged evidence and names the nodes it proves faulty
        faulty = json.loads(audit.stdout)["context"]["faulty_nodes"]
        key = str(first).lower().removeprefix("0x")
        proven = " ".join(
            n for e, names in faulty.items() if e.lower().removeprefix("0x") == key for n in names
        ).lower()
        liars = {i["address"].lower() for i in observed.get("evidence", []) if i["node"] in named}
        assert liars and all(address in proven for address in liars), (faulty, observed)
    finally:
        vouch(run, environ, "down")
