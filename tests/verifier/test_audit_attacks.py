"""The operator attacks the audit: a real log of real settlements on a real anvil, edited, re-hashed.

Every attack edits a copy of a log written by two real settlements (real node
processes, the real Forwarder and SettlementGate), then re-hashes the whole
chain as a careful operator would, so the hash-chain check passes and only the
checks against the pinned deployment, the chain and the entry grammar remain.
Each test asserts the finding and the entry it names.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vouch._anchor import anchor_log
from vouch.verifier import (
    AttestationLog,
    AuditReport,
    Pins,
    Web3ChainReader,
    audit,
    canonical_json,
    keccak,
    sign_report,
)
from vouch.verifier.audit import FROM_LOG, check_sequence

from ..attacker import Row, rehashed
from ..conftest import PASSWORD, revert
from ..integration.helpers import settle

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def real(env: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path, Pins]]:
    """Two real settlements in one log; the chain put back after the module."""
    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]
    path = tmp_path_factory.mktemp("attacks") / "real.db"
    log = AttestationLog(path)
    try:
        settle(env, log)
        settle(env, log)
        log.close()
        d = env.deployment
        pins = Pins(
            chain_id=d.chain_id,
            forwarder=d.address("Forwarder"),
            gate=d.address("SettlementGate"),
            anchor=d.address("AttestationAnchor"),
            source="test",
            workflows=((d.workflow.id, d.workflow.owner),),
            don_id=d.don.don_id,
        )
        yield env, path, pins
    finally:
        revert(env.w3, snapshot)


def audited(env: Any, path: Path, pins: Pins | None) -> AuditReport:
    return audit(AttestationLog(path, readonly=True), Web3ChainReader(env.w3), pins=pins)


def fails(report: AuditReport, check: str) -> dict[int, str]:
    return {f.seq: f.detail for f in report.failures if f.check == check}


def payloads(kind: str, change: Callable[[dict[str, Any]], None], first: bool = True):  # type: ignore[no-untyped-def]
    def edit(rows: list[Row]) -> list[Row]:
        for row in rows:
            if row[2] == kind:
                change(row[3])
                if first:
                    break
        return rows

    return edit


def test_the_honest_real_log_passes_every_new_check(real: tuple[Any, Path, Pins]) -> None:
    env, path, pins = real
    report = audited(env, path, pins)
    assert report.ok, report.failures
    tallies = report.by_check()
    for check in (
        "pinned deployment",
        "action hash",
        "trade terms",
        "report binding",
        "entry sequence",
        "transaction",
    ):
        assert tallies[check].ok >= 2 and not tallies[check].fail, check
    assert report.context.offline is False
    assert report.context.unanchored == 10  # nothing anchored in this log: all ten are open


def test_the_attackers_rehash_alone_keeps_the_hash_chain_whole(
    real: tuple[Any, Path, Pins], tmp_path: Path
) -> None:
    env, path, pins = real
    report = audited(env, rehashed(path, tmp_path, lambda rows: rows), pins)
    assert report.ok, report.failures


def test_a_forwarder_of_the_operators_own_named_in_the_log_fails_against_the_pins(
    real: tuple[Any, Path, Pins], tmp_path: Path
) -> None:
    env, path, pins = real
    own = env.deployment.address("FeedConsumer")  # any other contract of theirs

    def swap(rows: list[Row]) -> list[Row]:
        for row in rows:
            if "forwarder" in row[3]:
                row[3]["forwarder"] = own
            if "don" in row[3]:
                row[3]["don"]["forwarder"] = own
        return rows

    copy = rehashed(path, tmp_path, swap)
    report = audited(env, copy, pins)
    pinned = fails(report, "pinned deployment")
    assert sorted(pinned) == [2, 4, 5, 7, 9, 10], pinned  # observations, report, submission x2
    assert f"is not the pinned forwarder {pins.forwarder}" in pinned[2]
    # trusting the log's addresses instead, the own forwarder's (non-)config is read
    assert not audited(env, copy, None).ok
    # and where trust roots come from the log, every check resting on them says so
    trusting = audited(env, path, None)
    assert trusting.context.pins is not None and trusting.context.pins.from_log
    marked = [f for f in trusting.results if f.check == "signers configured"]
    assert len(marked) == 2 and all(FROM_LOG in f.detail for f in marked)


def test_an_execution_copied_under_a_new_id_citing_the_same_transaction_fails(
    real: tuple[Any, Path, Pins], tmp_path: Path
) -> None:
    env, path, pins = real
    new_id = "0x" + keccak(b"a copy").hex()

    def copy_first(rows: list[Row]) -> list[Row]:
        first = rows[0][1]
        copies = [[r[0] + 100, new_id, r[2], json.loads(json.dumps(r[3])), r[4]] for r in rows]
        for c in copies:
            if "observations_seq" in c[3]:
                c[3]["observations_seq"] += 100
        return rows + [c for c, r in zip(copies, rows, strict=True) if r[1] == first]

    report = audited(env, rehashed(path, tmp_path, copy_first), pins)
    assert "already backs submission #5" in fails(report, "one submission per transaction")[15]
    assert "execution id" in fails(report, "report binding")[14]
    assert "names another execution id" in fails(report, "transaction")[15]


def test_a_rewritten_proposal_fails_whether_or_not_its_action_hash_is_recomputed(
    real: tuple[Any, Path, Pins], tmp_path: Path
) -> None:
    env, path, pins = real

    def bigger(doc: dict[str, Any]) -> None:
        doc["proposal"]["params"]["base_amount"] *= 10

    report = audited(env, rehashed(path, tmp_path, payloads("proposal", bigger)), pins)
    assert "the action hash recomputes to" in fails(report, "action hash")[1]

    def consistent(doc: dict[str, Any]) -> None:
        bigger(doc)
        body = {k: v for k, v in doc["proposal"].items() if k not in ("rationale", "trace_hash")}
        doc["action_hash"] = "0x" + keccak(canonical_json(body)).hex()

    report = audited(env, rehashed(path, tmp_path, payloads("proposal", consistent)), pins)
    terms = fails(report, "trade terms")[1]
    assert "base_amount" in terms and "another action hash" in terms
    assert "action hash differs from the proposal's" in fails(report, "report contents")[4]


def test_an_execution_without_observations_and_consensus_fails_naming_the_position(
    real: tuple[Any, Path, Pins], tmp_path: Path
) -> None:
    env, path, pins = real

    def drop(rows: list[Row]) -> list[Row]:
        return [r for r in rows if r[0] not in (2, 3)]

    report = audited(env, rehashed(path, tmp_path, drop), pins)
    sequence = fails(report, "entry sequence")
    assert list(sequence) == [2], sequence  # the report, now entry 2 of its execution
    assert "entry 2 is 'report' after 'proposed'" in sequence[2]


def test_an_approval_the_gate_required_must_precede_the_round() -> None:
    class E:
        def __init__(self, seq: int, kind: str, payload: dict[str, Any] | None = None) -> None:
            self.seq, self.kind, self.payload = seq, kind, payload or {}

    entries = [E(1, "proposal"), E(2, "observations"), E(3, "consensus"), E(4, "report")]
    entries.append(E(5, "submission"))
    assert check_sequence(entries, approval_required=False)[1] == []
    problems = check_sequence(entries, approval_required=True)[1]
    assert problems and problems[0][0] == 2 and "no approving hitl" in problems[0][1]
    approved = [entries[0], E(9, "hitl", {"decision": "approved"}), *entries[1:]]
    assert check_sequence(approved, approval_required=True)[1] == []


def test_swapped_signer_lists_and_signatures_fail_against_the_calldata(
    real: tuple[Any, Path, Pins], tmp_path: Path
) -> None:
    env, path, pins = real
    nodes = [n.address for n in env.don.nodes]

    def other_signers(doc: dict[str, Any]) -> None:
        doc["signers"] = [n for n in nodes if n not in doc["signers"]][: len(doc["signers"])]

    report = audited(env, rehashed(path, tmp_path, payloads("report", other_signers)), pins)
    assert "logged signers are not" in fails(report, "report binding")[4]

    def other_signatures(doc: dict[str, Any]) -> None:  # valid signatures of other nodes
        from vouch.verifier import report_digest

        digest = report_digest(bytes.fromhex(doc["raw"][2:]), bytes.fromhex(doc["context"][2:]))
        keys = {n.address: k for n, k in zip(env.don.nodes, env.node_keys(), strict=True)}
        others = [n for n in nodes if n not in doc["signers"]][: len(doc["signers"])]
        doc["signatures"] = ["0x" + sign_report(digest, keys[n]).hex() for n in others]
        doc["signers"] = others

    report = audited(env, rehashed(path, tmp_path, payloads("report", other_signatures)), pins)
    assert "signatures in the transaction are not those logged" in fails(report, "transaction")[5]
    assert not fails(report, "report signatures")  # each is a valid configured signature


def test_two_executions_swapped_and_relinked_contradict_the_chain_order(
    real: tuple[Any, Path, Pins], tmp_path: Path
) -> None:
    env, path, pins = real
    report = audited(env, rehashed(path, tmp_path, lambda rows: rows[5:] + rows[:5]), pins)
    order = fails(report, "chain order")
    assert list(order) == [10], order  # the first settlement's submission, now logged last
    assert "yet logged after it" in order[10]


def test_an_anchor_mismatch_names_the_first_entry_that_differs_not_every_entry_after(
    real: tuple[Any, Path, Pins], tmp_path: Path
) -> None:
    env, path, pins = real

    def edit(rows: list[Row]) -> list[Row]:
        rows[7][3]["value"] += 1  # entry 8 (the 2nd settlement's consensus), then re-hash
        return rows

    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        anchored = tmp_path / "anchored.db"
        shutil.copy(path, anchored)
        log = AttestationLog(anchored)
        assert anchor_log(log, env.writer, env.artifacts, env.deployment) is not None
        log.close()
        assert audited(env, anchored, pins).ok

        report = audited(
            env, rehashed(anchored, tmp_path, payloads("consensus", lambda d: None)), pins
        )
        assert report.ok  # the re-hash of an unedited log is the same log
        report = audited(env, rehashed(anchored, tmp_path, edit), pins)
        anchored_fails = fails(report, "anchored")
        assert list(anchored_fails) == [8], anchored_fails
        assert "entry #8 is not what anchor #0 committed" in anchored_fails[8]
        by_entry = {r.seq: r.status for r in report.results if r.check == "anchored"}
        assert all(by_entry[seq] == "ok" for seq in range(1, 8))  # before the edit: proven
        assert all(by_entry[seq] == "skip" for seq in range(9, 11))  # re-hashed from #8
    finally:
        revert(env.w3, snapshot)

    # an anchor whose transaction carries no entry hashes (or hashes that do not make the
    # stored root: they are not trusted) narrows the difference to its range
    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        from vouch.cre_adapters.evm import contract
        from vouch.verifier import leaf as merkle_leaf
        from vouch.verifier import merkle_root

        entries = AttestationLog(path, readonly=True).entries_after(0)
        anchor = contract(
            env.w3, env.artifacts, "AttestationAnchor", env.deployment.address("AttestationAnchor")
        )
        leaves = [merkle_leaf(e.seq, bytes.fromhex(e.entry_hash[2:])) for e in entries]
        head = bytes.fromhex(entries[-1].entry_hash[2:])
        call = anchor.encode_abi("anchor", args=[merkle_root(leaves), 1, entries[-1].seq, head])
        lies = b"\x11" * 32 * len(entries)  # the right length, but not the anchored hashes
        env.writer.transact_data(anchor.address, bytes.fromhex(call[2:]) + lies)
        report = audited(env, rehashed(path, tmp_path, edit), pins)
        anchored_fails = fails(report, "anchored")
        assert list(anchored_fails) == [1], anchored_fails
        assert "the first entry that differs is in #1..#10" in anchored_fails[1]
    finally:
        revert(env.w3, snapshot)


def _verifier(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vouch.verifier", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_an_rpc_url_alone_cannot_audit_and_names_the_pin_flags(
    real: tuple[Any, Path, Pins],
) -> None:
    env, path, pins = real
    alone = _verifier("audit", str(path), "--rpc-url", env.chain.url)
    assert alone.returncode == 2, alone.stdout + alone.stderr
    assert "--manifest FILE, or --chain-id --forwarder --gate --anchor" in alone.stderr
    assert "--trust-log-addresses" in alone.stderr
    trusting = _verifier("audit", str(path), "--rpc-url", env.chain.url, "--trust-log-addresses")
    assert trusting.returncode == 0, trusting.stdout + trusting.stderr
    assert "pins: NONE - trust roots taken from the log itself" in trusting.stdout
    pinned = _verifier(
        "audit",
        str(path),
        "--rpc-url",
        env.chain.url,
        *("--chain-id", str(pins.chain_id), "--forwarder", str(pins.forwarder)),
        *("--gate", str(pins.gate), "--anchor", str(pins.anchor), "--json"),
    )
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    doc = json.loads(pinned.stdout)
    checks = {r["check"] for r in doc["results"]}
    assert {"anchored", "transaction", "pinned deployment"} <= checks  # nothing silently skipped
    assert doc["context"]["unanchored_entries"] == 10 and not doc["context"]["offline"]


def test_a_pinned_address_without_code_cannot_audit_naming_it(
    real: tuple[Any, Path, Pins],
) -> None:
    env, path, pins = real
    eoa = env.writer.address
    result = _verifier(
        "audit",
        str(path),
        "--rpc-url",
        env.chain.url,
        *("--chain-id", str(pins.chain_id), "--forwarder", eoa),
        *("--gate", str(pins.gate), "--anchor", str(pins.anchor)),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"the pinned forwarder {eoa} has no code" in result.stderr


def test_a_log_named_address_without_code_is_a_finding_not_a_crash(
    real: tuple[Any, Path, Pins], tmp_path: Path
) -> None:
    env, path, _ = real
    eoa = env.writer.address

    def swap(doc: dict[str, Any]) -> None:
        doc["don"]["forwarder"] = eoa

    report = audited(env, rehashed(path, tmp_path, payloads("observations", swap)), None)
    assert not report.ok and 2 in {f.seq for f in report.failures}


def _crafted(path: Path, tmp_path: Path, sql: str) -> Path:
    copy = tmp_path / "crafted.db"
    shutil.copy(path, copy)
    with sqlite3.connect(copy) as db:
        db.execute(sql)
    return copy


@pytest.mark.parametrize(
    ("sql", "seq", "needle"),
    [
        (
            "UPDATE entries SET payload = '" + "[" * 80_000 + "]" * 80_000 + "' WHERE seq = 3",
            3,
            "nested deeper than 64 levels",
        ),
        ("UPDATE entries SET created_at = 'noon' WHERE seq = 2", 2, "is not an integer"),
        ('UPDATE entries SET payload = \'{"value": "lots"}\' WHERE seq = 3', 3, ""),
    ],
    ids=["80,000 deep", "text in created_at", "text for a number"],
)
def test_crafted_entries_are_findings_in_both_clis_never_a_crash(
    real: tuple[Any, Path, Pins], tmp_path: Path, sql: str, seq: int, needle: str
) -> None:
    env, path, pins = real
    crafted = _crafted(path, tmp_path, sql)
    alone = _verifier("audit", str(crafted), "--json")
    assert alone.returncode == 1, alone.stdout[-2000:] + alone.stderr[-2000:]
    failing = [r for r in json.loads(alone.stdout)["results"] if r["status"] == "fail"]
    assert any(r["seq"] == seq and needle in r["detail"] for r in failing), failing
    environ = {
        **os.environ,
        "VOUCH_HOME": str(env.settings.home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "VOUCH_APPROVAL_THRESHOLD": "0",
    }
    html = tmp_path / "report.html"
    with_vouch = subprocess.run(
        [sys.executable, "-m", "vouch", "audit", "--log", str(crafted), "--html", str(html)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert with_vouch.returncode == 1, with_vouch.stdout[-2000:] + with_vouch.stderr[-2000:]
    assert f"#{seq}" in with_vouch.stdout and "Traceback" not in with_vouch.stderr
    assert html.exists() and 'id="context"' in html.read_text()
