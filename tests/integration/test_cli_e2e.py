"""What a user does: `vouch demo settlement`, then `vouch audit`, then an attacker edits the log."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import PASSWORD, copy_cache, revert
from .helpers import vouch_cli as vouch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, env
) -> Iterator[tuple[dict[str, str], Path, str]]:
    home = tmp_path_factory.mktemp("demo-home")
    copy_cache(env.settings.home / "cache", home)
    environ = {
        **os.environ,
        "VOUCH_HOME": str(home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "COLUMNS": "200",
    }
    result = vouch(environ, "demo", "settlement")
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield environ, home, result.stdout
    finally:
        vouch(environ, "down")


def test_demo_settles_and_prints_a_summary(demo) -> None:
    _, home, out = demo
    for needle in (
        "settled",
        "attested price",
        "signers",
        "tx hash",
        "gas used",
        "log entry",
        "vouch audit",
        "paused before the irreversible settlement",
        "approved by approver",
        "recorded onchain",
        "trace hash",
    ):
        assert needle in out
    assert (home / "attestations.db").exists()
    assert list((home / "deployments").glob("*.json"))


def test_audit_passes_on_the_demo_log(demo) -> None:
    environ, _, _ = demo
    result = vouch(environ, "audit")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def tampered(home: Path, tmp_path: Path, *sql: str) -> Path:
    copy = tmp_path / "tampered.db"
    shutil.copy(home / "attestations.db", copy)
    with sqlite3.connect(copy) as db:
        for statement in sql:
            db.execute(statement)
    return copy


@pytest.mark.parametrize(
    ("sql", "entry"),
    [
        (
            ["UPDATE entries SET payload = replace(payload, 'settled', 'settleD') WHERE seq = 6"],
            "6",
        ),
        (["UPDATE entries SET kind = 'consensuz' WHERE seq = 4"], "4"),
        (["UPDATE entries SET created_at = created_at + 1 WHERE seq = 2"], "2"),
        (["DELETE FROM entries WHERE seq = 3"], "4"),
        (
            [
                "UPDATE entries SET seq = -2 WHERE seq = 2",
                "UPDATE entries SET seq = 2 WHERE seq = 3",
                "UPDATE entries SET seq = 3 WHERE seq = -2",
            ],
            "2",
        ),
    ],
    ids=["edit-payload", "edit-kind", "edit-timestamp", "delete", "reorder"],
)
def test_audit_fails_and_names_the_entry_when_the_log_is_tampered(
    demo, tmp_path: Path, sql, entry
) -> None:
    environ, home, _ = demo
    copy = tampered(home, tmp_path, *sql)
    result = vouch(environ, "audit", "--log", str(copy))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"#{entry}" in result.stdout


def test_audit_without_a_log_cannot_audit(demo, tmp_path: Path) -> None:
    environ, _, _ = demo
    result = vouch(environ, "audit", "--log", str(tmp_path / "missing.db"))
    assert result.returncode == 2
    assert "missing.db" in result.stdout + result.stderr


def test_audit_of_an_unreadable_log_cannot_audit(demo, tmp_path: Path) -> None:
    environ, _, _ = demo
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an sqlite database, just bytes " * 100)
    result = vouch(environ, "audit", "--log", str(garbage))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot audit" in result.stdout and "garbage.db is not a readable attestation log" in (
        result.stdout.replace("\n", "")
    )


def test_audit_without_an_answering_rpc_cannot_audit(demo) -> None:
    from vouch.cre_adapters.evm import free_port

    environ, _, _ = demo
    dead = f"http://127.0.0.1:{free_port()}"
    result = vouch({**environ, "VOUCH_RPC_URL": dead}, "audit")
    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout.replace("\n", "")
    assert "cannot audit" in out and dead in out and "VOUCH_RPC_URL" in out


def execution_of(home: Path, kind: str = "submission") -> str:
    with sqlite3.connect(home / "attestations.db") as db:
        return str(
            db.execute("SELECT execution_id FROM entries WHERE kind = ?", (kind,)).fetchone()[0]
        )


def test_replay_recomputes_the_decision(demo) -> None:
    environ, home, _ = demo
    result = vouch(environ, "replay", execution_of(home)[:12])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recomputes exactly" in result.stdout


def test_replay_shows_where_a_replaced_observation_diverges(demo, tmp_path: Path) -> None:
    environ, home, _ = demo
    copy = tampered(home, tmp_path)
    with sqlite3.connect(copy) as db:
        text = db.execute("SELECT payload FROM entries WHERE kind = 'observations'").fetchone()[0]
        doc = json.loads(text)
        for o in doc["observations"]:
            o["observation"]["value"] = 1  # every node "said" 1
        db.execute("UPDATE entries SET payload = ? WHERE kind = 'observations'", (json.dumps(doc),))
    result = vouch(environ, "replay", execution_of(home), "--log", str(copy))
    assert result.returncode == 1
    assert "does not carry its signature" in result.stdout
    assert "recomputed median 1" in result.stdout


def test_exported_log_imports_with_the_same_hashes_and_audits_clean(demo, tmp_path: Path) -> None:
    environ, home, _ = demo
    assert vouch(environ, "log", "export", str(tmp_path / "log.jsonl")).returncode == 0
    imported = vouch(
        environ, "log", "import", str(tmp_path / "log.jsonl"), "--into", str(tmp_path / "copy.db")
    )
    assert imported.returncode == 0, imported.stderr
    result = vouch(environ, "audit", "--log", str(tmp_path / "copy.db"))
    assert result.returncode == 0, result.stdout


def test_anchor_then_prove_an_entry_onchain_and_catch_a_truncated_log(demo, tmp_path: Path) -> None:
    environ, home, _ = demo
    anchored = vouch(environ, "log", "anchor")
    assert anchored.returncode == 0, anchored.stdout + anchored.stderr
    assert "anchored #1..#6" in anchored.stdout
    assert "nothing to anchor" in vouch(environ, "log", "anchor").stdout
    proof = vouch(environ, "log", "prove", "3", "--json")
    assert proof.returncode == 0, proof.stdout + proof.stderr
    doc = json.loads(proof.stdout)
    assert doc["verified_onchain"] is True and doc["verified_locally"] is True and doc["seq"] == 3
    clean = vouch(environ, "audit", "--json")
    assert clean.returncode == 0
    checks = json.loads(clean.stdout)["results"]
    assert sum(r["check"] == "anchored" and r["status"] == "ok" for r in checks) == 6
    # dropping the newest entries keeps the hash chain intact; only the anchor can tell
    truncated = tampered(home, tmp_path, "DELETE FROM entries WHERE seq >= 4")
    result = vouch(environ, "audit", "--log", str(truncated))
    assert result.returncode == 1, result.stdout
    assert "missing from the log" in result.stdout


def test_an_onchain_settlement_the_log_does_not_explain_is_an_alarm(demo) -> None:
    from eth_account import Account
    from web3 import Web3

    from vouch.cre_adapters import DonConfig, load_key
    from vouch.cre_adapters.evm import ANVIL_DEV_KEYS
    from vouch.verifier import (
        ReportBody,
        ReportMetadata,
        SettlementPayload,
        encode_report,
        report_context,
        report_digest,
        sign_report,
    )

    environ, home, _ = demo
    manifest = json.loads(next((home / "deployments").glob("*.json")).read_text())
    don = DonConfig.load(home / "don" / "don.json")
    w3 = Web3(Web3.HTTPProvider(manifest["rpc_url"]))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        now = w3.eth.get_block("latest")["timestamp"]
        wf = manifest["workflow"]
        meta = ReportMetadata(
            execution_id=b"\x99" * 32,
            timestamp=now,
            don_id=1,
            config_version=1,
            workflow_id=wf["id"],
            workflow_name=wf["name"],
            workflow_owner=wf["owner"],
            report_id=wf["report_id"],
        )
        body = ReportBody(
            chain_id=manifest["chain_id"],
            receiver=manifest["contracts"]["SettlementGate"],
            timestamp=now,
            action_hash=b"\x00" * 32,
            payload=SettlementPayload(trade_id=1, price=1).encode(),
        )
        raw, ctx = encode_report(meta, body), report_context(don.digest(), 1)
        sigs = [
            sign_report(report_digest(raw, ctx), load_key(n.keystore, PASSWORD))
            for n in don.nodes[:2]
        ]
        abi = [
            {
                "type": "function",
                "name": "report",
                "stateMutability": "nonpayable",
                "outputs": [],
                "inputs": [
                    {"name": "r", "type": "address"},
                    {"name": "raw", "type": "bytes"},
                    {"name": "ctx", "type": "bytes"},
                    {"name": "sigs", "type": "bytes[]"},
                ],
            }
        ]
        forwarder = w3.eth.contract(address=manifest["contracts"]["Forwarder"], abi=abi)
        sender = Account.from_key(ANVIL_DEV_KEYS[0])
        tx = forwarder.functions.report(body.receiver, raw, ctx, sigs).build_transaction(
            {
                "from": sender.address,
                "nonce": w3.eth.get_transaction_count(sender.address),
                "gas": 1_000_000,
            }
        )
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        )
        result = vouch(environ, "audit")
        assert result.returncode == 1, result.stdout
        assert "ALARM" in result.stdout and "has no log entry" in result.stdout
    finally:
        revert(w3, snapshot)


def test_a_refund_onchain_of_a_trade_the_log_never_proposed_is_an_alarm(demo, env) -> None:
    """Escrow outside vouch, let it expire, refund it: the gate's TradeRefunded has no log entry."""
    from eth_account import Account
    from web3 import Web3
    from web3.logs import DISCARD

    from vouch.cre_adapters.evm import ANVIL_DEV_KEYS, contract

    environ, home, _ = demo
    manifest = json.loads(next((home / "deployments").glob("*.json")).read_text())
    w3 = Web3(Web3.HTTPProvider(manifest["rpc_url"]))
    contracts = manifest["contracts"]
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    seller = Account.from_key(ANVIL_DEV_KEYS[0])

    def send(call) -> dict:  # type: ignore[no-untyped-def]
        tx = call.build_transaction(
            {
                "from": seller.address,
                "nonce": w3.eth.get_transaction_count(seller.address),
                "gas": 1_000_000,
            }
        )
        sent = w3.eth.send_raw_transaction(seller.sign_transaction(tx).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(sent)
        assert receipt["status"] == 1
        return receipt

    try:
        weth = contract(w3, env.artifacts, "TestToken", contracts["WETH"])
        gate = contract(w3, env.artifacts, "SettlementGate", contracts["SettlementGate"])
        send(weth.functions.mint(seller.address, 10**18))
        send(weth.functions.approve(gate.address, 10**18))
        deadline = w3.eth.get_block("latest")["timestamp"] + 60
        created = send(
            gate.functions.createTrade(
                seller.address,
                weth.address,
                10**18,
                contracts["USDC"],
                1,
                2**128,
                deadline,
                b"\x01" * 32,
            )
        )
        [event] = gate.events.TradeCreated().process_receipt(created, errors=DISCARD)
        trade_id = event["args"]["tradeId"]
        w3.provider.make_request("evm_increaseTime", [120])
        w3.provider.make_request("evm_mine", [])
        send(gate.functions.refund(trade_id))
        result = vouch(environ, "audit")
        assert result.returncode == 1, result.stdout
        assert f"ALARM: trade #{trade_id} refunded onchain" in result.stdout, result.stdout
    finally:
        revert(w3, snapshot)
    assert vouch(environ, "audit").returncode == 0  # the chain reverted: nothing unexplained


def rechained(home: Path, tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the log edited by ``edit(rows)`` and then re-hashed end to end, as a careful attacker would."""
    from vouch.verifier import canonical_json, chain_hash

    copy = tampered(home, tmp_path)
    with sqlite3.connect(copy) as db:
        rows = [
            list(r)
            for r in db.execute(
                "SELECT seq, execution_id, kind, payload, created_at FROM entries ORDER BY seq"
            )
        ]
        rows = edit(rows)
        db.execute("DELETE FROM entries")
        prev = "0x" + "00" * 32
        for seq, (_, execution, kind, payload, created) in enumerate(rows, start=1):
            value = json.loads(payload)
            text = canonical_json(value).decode()
            entry_hash = chain_hash(prev, seq, execution, kind, value, created)
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, execution, kind, text, created, prev, entry_hash),
            )
            prev = entry_hash
    return copy


def _edit_payload(kind: str, change):  # type: ignore[no-untyped-def]
    def edit(rows):  # type: ignore[no-untyped-def]
        for row in rows:
            if row[2] == kind:
                doc = json.loads(row[3])
                change(doc)
                row[3] = json.dumps(doc)
        return rows

    return edit


def _swap_signature(doc) -> None:  # type: ignore[no-untyped-def]
    doc["signatures"][0] = doc["signatures"][1]


def _replace_observation(doc) -> None:  # type: ignore[no-untyped-def]
    doc["observations"][0]["observation"]["value"] += 10**18


def _edit_consensus(doc) -> None:  # type: ignore[no-untyped-def]
    doc["value"] += 1


def _claim_another_approver(doc) -> None:  # type: ignore[no-untyped-def]
    doc["approver"] = "0x" + "42" * 20


def _drop_submission(rows):  # type: ignore[no-untyped-def]
    return [row for row in rows if row[2] != "submission"]


def test_a_settlement_missing_from_a_rehashed_log_is_an_alarm_from_the_forwarder_and_the_gate(
    demo, tmp_path: Path
) -> None:
    environ, home, _ = demo
    copy = rechained(home, tmp_path, _drop_submission)
    result = vouch(environ, "audit", "--json", "--log", str(copy))
    assert result.returncode == 1, result.stdout
    alarms = [
        r["detail"]
        for r in json.loads(result.stdout)["results"]
        if r["check"] == "explained by the log" and r["status"] == "fail"
    ]
    assert any(a.startswith("ALARM: report") for a in alarms), alarms  # Forwarder ReportProcessed
    assert any(  # the gate's own TradeSettled, read from the real chain
        a.startswith("ALARM: trade #1 settled onchain") and "has no log entry" in a for a in alarms
    ), alarms


def _insert_submission(rows):  # type: ignore[no-untyped-def]
    fake = list(rows[-1])
    doc = json.loads(fake[3])
    doc["tx_hash"] = "0x" + "ee" * 32
    fake[3] = json.dumps(doc)
    return [*rows, fake]


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (_edit_payload("report", _swap_signature), "report signatures"),
        (_edit_payload("observations", _replace_observation), "observation signatures"),
        (_edit_payload("consensus", _edit_consensus), "consensus recomputed"),
        (_insert_submission, "transaction"),
        (_edit_payload("hitl", _claim_another_approver), "approver signature"),
    ],
    ids=[
        "swap-signature",
        "replace-observation",
        "edit-consensus",
        "insert-fake-submission",
        "claim-another-approver",
    ],
)
def test_a_rehashed_log_still_fails_the_semantic_checks(
    demo, tmp_path: Path, edit, check: str
) -> None:
    environ, home, _ = demo
    copy = rechained(home, tmp_path, edit)
    result = vouch(environ, "audit", "--json", "--log", str(copy))
    assert result.returncode == 1, result.stdout
    failures = [r for r in json.loads(result.stdout)["results"] if r["status"] == "fail"]
    assert check in {f["check"] for f in failures}
    assert not any(
        f["check"] == "chain" for f in failures
    )  # the chain itself was re-hashed consistently


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import shutil as sh

    browser = sh.which("chromium")
    assert browser, "Debian's chromium is required for the report test: `make test` installs it"
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_html_report_renders_in_a_real_browser_and_shows_the_failures(demo, tmp_path: Path) -> None:
    environ, home, _ = demo
    copy = tampered(
        home,
        tmp_path,
        "UPDATE entries SET payload = replace(payload, 'settled', 'settleD') WHERE seq = 6",
    )
    page = tmp_path / "audit.html"
    result = vouch(environ, "audit", "--log", str(copy), "--html", str(page))
    assert result.returncode == 1
    html_text = page.read_text()
    assert "<script" not in html_text and "http" not in html_text.split("<body>")[1].replace(
        "http://", ""
    )
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    failures = dom.stdout.split('id="failures"')[1].split("<h2>")[0]
    assert "#6" in failures and "submission" in failures and "edited" in failures
    assert 'id="verdict"' in dom.stdout and "failed checks" in dom.stdout
    assert dom.stdout.index('id="failures"') < dom.stdout.index("<h2>Nodes</h2>")  # failures first
    assert dom.stdout.count("<svg") >= 3  # deviation, latency (the coordinator logs it), absence
    assert 'aria-label="latency per node"' in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    shot = chromium(
        tmp_path, f"--screenshot={tmp_path / 'audit.png'}", "--window-size=1200,1600", page.as_uri()
    )
    assert shot.returncode == 0 and (tmp_path / "audit.png").stat().st_size > 10_000
    # with --json too, standard output is the JSON alone; where the page went is on stderr
    both = vouch(environ, "audit", "--log", str(copy), "--json", "--html", str(tmp_path / "b.html"))
    assert both.returncode == 1 and f"wrote {tmp_path / 'b.html'}" in both.stderr.replace("\n", "")
    assert not json.loads(both.stdout)["ok"] and (tmp_path / "b.html").exists()
