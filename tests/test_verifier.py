"""verifier on its own: the wire format, signatures, the median, the hash-chained log."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
from eth_abi import encode
from eth_abi.packed import encode_packed
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.verifier import (
    METADATA_LENGTH,
    AttestationLog,
    ConsensusError,
    EncodingError,
    LogIntegrityError,
    Observation,
    ReportBody,
    ReportMetadata,
    SettlementPayload,
    SignatureError,
    canonical_json,
    encode_report,
    keccak,
    median,
    recover_observation_signer,
    recover_report_signer,
    report_context,
    report_digest,
    sign_observation,
    sign_report,
    transmission_id,
)

OWNER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
RECEIVER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

bytes32 = st.binary(min_size=32, max_size=32)
uint32 = st.integers(0, 2**32 - 1)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: Account.from_key(keccak(b)).address)
keys = st.binary(min_size=32, max_size=32).filter(
    lambda b: 0 < int.from_bytes(b, "big") < SECP256K1_N
)


def metadata(**overrides: object) -> ReportMetadata:
    fields: dict[str, object] = {
        "version": 1,
        "execution_id": b"\x11" * 32,
        "timestamp": 1_800_000_000,
        "don_id": 1,
        "config_version": 2,
        "workflow_id": b"\x22" * 32,
        "workflow_name": "settlement",
        "workflow_owner": OWNER,
        "report_id": b"\x00\x01",
    }
    fields.update(overrides)
    return ReportMetadata(**fields)  # type: ignore[arg-type]


def test_metadata_fixed_vector_matches_an_independent_packed_encoding() -> None:
    meta = metadata()
    expected = encode_packed(
        [
            "uint8",
            "bytes32",
            "uint32",
            "uint32",
            "uint32",
            "bytes32",
            "bytes10",
            "address",
            "bytes2",
        ],
        [1, b"\x11" * 32, 1_800_000_000, 1, 2, b"\x22" * 32, b"settlement", OWNER, b"\x00\x01"],
    )
    assert meta.encode() == expected
    assert len(expected) == METADATA_LENGTH == 109
    assert meta.encode().hex() == (
        "01"
        + "11" * 32
        + "6b49d200"
        + "00000001"
        + "00000002"
        + "22" * 32
        + b"settlement".hex()
        + OWNER[2:].lower()
        + "0001"
    )
    assert meta.config_id == (1 << 32) | 2


def test_body_is_the_abi_encoding_the_receiver_decodes() -> None:
    body = ReportBody(
        chain_id=31337,
        receiver=RECEIVER,
        timestamp=5,
        action_hash=b"\x33" * 32,
        payload=b"\x01\x02",
    )
    assert body.encode() == encode(
        ["uint256", "address", "uint64", "bytes32", "bytes"],
        [31337, RECEIVER, 5, b"\x33" * 32, b"\x01\x02"],
    )


def test_digest_fixed_vector() -> None:
    raw = encode_report(
        metadata(), ReportBody(chain_id=1, receiver=RECEIVER, timestamp=7, action_hash=b"\x44" * 32)
    )
    context = report_context(b"\x55" * 32, 9)
    assert context == b"\x55" * 32 + (9).to_bytes(32, "big") + bytes(32)
    assert report_digest(raw, context) == keccak(keccak(raw) + context)
    assert (
        report_digest(raw, context).hex()
        == "9183276e2486066ef2b5f3b6ad5f842d3523af48d10d993564f8f1e5a7dc64db"
    )


def test_transmission_id_is_keystones() -> None:
    expected = keccak(bytes.fromhex(RECEIVER[2:]) + b"\x11" * 32 + b"\x00\x01")
    assert transmission_id(RECEIVER, b"\x11" * 32, b"\x00\x01") == expected


@given(trade=st.integers(0, 2**256 - 1), price=st.integers(0, 2**256 - 1))
def test_settlement_payload_round_trips(trade: int, price: int) -> None:
    payload = SettlementPayload(trade_id=trade, price=price)
    assert SettlementPayload.decode(payload.encode()) == payload


def test_bad_metadata_is_an_encoding_error_naming_the_problem() -> None:
    with pytest.raises(EncodingError, match="109 bytes"):
        ReportMetadata.decode(b"\x01" * 50)
    with pytest.raises(ValueError, match="execution_id must be 32 bytes"):
        metadata(execution_id=b"\x01")
    with pytest.raises(EncodingError, match="invalid report body"):
        ReportBody.decode(b"\x00" * 10)


@settings(max_examples=50, deadline=None)
@given(key=keys, digest=bytes32)
def test_report_signatures_recover_and_are_low_s(key: bytes, digest: bytes) -> None:
    signature = sign_report(digest, key)
    assert len(signature) == 65 and signature[64] in (0, 1)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
    assert recover_report_signer(digest, signature) == Account.from_key(key).address


def test_high_s_bad_v_and_bad_length_are_rejected() -> None:
    key, digest = b"\x07" * 32, b"\x09" * 32
    sig = sign_report(digest, key)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    high = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([1 - v])
    with pytest.raises(SignatureError, match="high s"):
        recover_report_signer(digest, high)
    with pytest.raises(SignatureError, match="v must be"):
        recover_report_signer(digest, sig[:64] + b"\x1b")
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_report_signer(digest, sig[:64])


def test_a_signature_over_another_digest_recovers_someone_else() -> None:
    key = b"\x07" * 32
    sig = sign_report(b"\x01" * 32, key)
    assert recover_report_signer(b"\x02" * 32, sig) != Account.from_key(key).address


def test_observation_signature_binds_every_field() -> None:
    key = b"\x05" * 32
    node = Account.from_key(key).address
    signed = sign_observation(
        Observation(request_id="r", feed="ETH/USD", value=3000, observed_at=1, node=node), key
    )
    assert recover_observation_signer(signed) == node
    forged = signed.model_copy(
        update={"observation": signed.observation.model_copy(update={"value": 3001})}
    )
    assert recover_observation_signer(forged) != node


def test_canonical_json_is_sorted_compact_and_refuses_floats() -> None:
    assert canonical_json({"b": 1, "a": [b"\x01", "é"]}) == '{"a":["0x01","é"],"b":1}'.encode()
    with pytest.raises(TypeError, match="float"):
        canonical_json({"price": 1.5})


@given(values=st.lists(st.integers(-(2**255), 2**255), min_size=1, max_size=31))
def test_median_is_an_observed_value_with_half_on_each_side(values: list[int]) -> None:
    m = median(values)
    assert m in values
    assert sum(v <= m for v in values) > len(values) // 2
    assert sum(v >= m for v in values) >= (len(values) + 1) // 2


@given(
    data=st.data(),
    f=st.integers(1, 5),
    honest_center=st.integers(1, 10**24),
)
def test_median_stays_within_honest_values_when_at_most_f_lie(
    data, f: int, honest_center: int
) -> None:
    n_honest = data.draw(st.integers(2 * f + 1, 3 * f + 1))
    honest = data.draw(
        st.lists(
            st.integers(honest_center - 10**18, honest_center + 10**18),
            min_size=n_honest,
            max_size=n_honest,
        )
    )
    liars = data.draw(st.lists(st.integers(-(2**200), 2**200), min_size=0, max_size=f))
    m = median(honest + liars)
    assert min(honest) <= m <= max(honest)


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ConsensusError):
        median([])


# --- the log -------------------------------------------------------------------------


def fill(log: AttestationLog, n: int = 5) -> None:
    for i in range(n):
        log.append(b"\xaa" * 32, f"kind{i}", {"i": i, "blob": "x" * i})


def broken(log: AttestationLog) -> dict[int, str]:
    found: dict[int, str] = {}
    for finding in log.verify_chain():
        found[finding.seq] = "; ".join(filter(None, [found.get(finding.seq), finding.detail]))
    return found


def test_log_chains_every_entry(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "a.db")
    fill(log)
    entries = list(log.entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == "0x" + "00" * 32
    assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))
    assert broken(log) == {}


def tamper(path: Path, *sql: str) -> AttestationLog:
    with sqlite3.connect(path) as db:
        for statement in sql:
            db.execute(statement)
    return AttestationLog(path, readonly=True)


def test_edited_payload_is_named(tmp_path: Path) -> None:
    fill(AttestationLog(tmp_path / "a.db"))
    log = tamper(
        tmp_path / "a.db", "UPDATE entries SET payload = replace(payload, 'xx', 'xy') WHERE seq = 3"
    )
    assert list(broken(log)) == [3]


def test_non_canonical_whitespace_edit_is_named(tmp_path: Path) -> None:
    fill(AttestationLog(tmp_path / "a.db"))
    log = tamper(
        tmp_path / "a.db", "UPDATE entries SET payload = replace(payload, ',', ', ') WHERE seq = 4"
    )
    assert broken(log) == {4: "payload text is not canonical JSON (edited)"}


def test_deleted_entry_is_named_at_the_gap(tmp_path: Path) -> None:
    fill(AttestationLog(tmp_path / "a.db"))
    log = tamper(tmp_path / "a.db", "DELETE FROM entries WHERE seq = 2")
    assert list(broken(log)) == [3]
    assert "missing" in broken(log)[3]


def test_swapped_entries_are_named(tmp_path: Path) -> None:
    fill(AttestationLog(tmp_path / "a.db"))
    log = tamper(
        tmp_path / "a.db",
        "UPDATE entries SET seq = -1 WHERE seq = 2",
        "UPDATE entries SET seq = 2 WHERE seq = 3",
        "UPDATE entries SET seq = 3 WHERE seq = -1",
    )
    assert set(broken(log)) >= {2, 3}


def test_concurrent_writers_keep_one_contiguous_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    AttestationLog(path)

    def write(worker: int) -> None:
        log = AttestationLog(path)
        for i in range(20):
            log.append(bytes([worker]) * 32, "event", {"worker": worker, "i": i})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    procs = [
        multiprocessing.get_context("spawn").Process(
            target=_write_from_process, args=(str(path), w)
        )
        for w in (10, 11)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    log = AttestationLog(path, readonly=True)
    assert [e.seq for e in log.entries()] == list(range(1, 121))
    assert broken(log) == {}


def _write_from_process(path: str, worker: int) -> None:
    log = AttestationLog(path)
    for i in range(20):
        log.append(bytes([worker]) * 32, "event", {"worker": worker, "i": i})


def test_entry_hash_fixed_vector() -> None:
    from vouch.verifier import chain_hash

    payload = {"mode": "median", "value": 3000 * 10**18, "f": 1, "note": "é"}
    header = {
        "seq": 1,
        "execution_id": "0x" + "ab" * 32,
        "kind": "consensus",
        "payload": payload,
        "created_at": 1_800_000_000_000,
    }
    assert (
        canonical_json(header)
        == (
            '{"created_at":1800000000000,"execution_id":"0x' + "ab" * 32 + '","kind":"consensus",'
            '"payload":{"f":1,"mode":"median","note":"é","value":3000000000000000000000},"seq":1}'
        ).encode()
    )
    expected = keccak(bytes(32) + canonical_json(header))
    got = chain_hash("0x" + "00" * 32, 1, "0x" + "ab" * 32, "consensus", payload, 1_800_000_000_000)
    assert (
        got
        == "0x" + expected.hex()
        == "0x33b8c993fff11b712c3ff461e6c19f943292a7276f344f3825595e87354df115"
    )


def test_export_import_keeps_every_hash_and_refuses_an_edit(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "a.db")
    fill(log, 6)
    assert log.export_jsonl(tmp_path / "a.jsonl") == 6
    copy = AttestationLog.import_jsonl(tmp_path / "a.jsonl", tmp_path / "b.db")
    assert list(copy.entries()) == list(log.entries())
    assert broken(copy) == {}
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace("xxx", "xxy")
    (tmp_path / "edited.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(LogIntegrityError, match="line 4: entry #4: hash mismatch"):
        AttestationLog.import_jsonl(tmp_path / "edited.jsonl", tmp_path / "c.db")
    assert not (tmp_path / "c.db").exists()


def test_import_refuses_a_non_empty_log_and_garbage(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "a.db")
    fill(log, 2)
    log.export_jsonl(tmp_path / "a.jsonl")
    with pytest.raises(LogIntegrityError, match="already exists"):
        AttestationLog.import_jsonl(tmp_path / "a.jsonl", tmp_path / "a.db")
    (tmp_path / "junk.jsonl").write_text("{not json\n")
    with pytest.raises(
        LogIntegrityError, match="junk.jsonl is not an intact log export.*\n  line 1: bad JSON"
    ):
        AttestationLog.import_jsonl(tmp_path / "junk.jsonl", tmp_path / "d.db")


WRITER = """
import sys
from vouch.verifier import AttestationLog
log = AttestationLog(sys.argv[1])
i = 0
while True:
    entry = log.append(b"\\x01" * 32, "event", {"i": i, "pad": "x" * 200})
    print(entry.seq, flush=True)
    i += 1
"""


def test_a_writer_killed_mid_stream_leaves_a_valid_prefix_with_every_acknowledged_entry(
    tmp_path: Path,
) -> None:
    import signal
    import subprocess
    import sys

    path = tmp_path / "a.db"
    AttestationLog(path)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    acked = 0
    for line in writer.stdout:
        acked = int(line)
        if acked >= 200:
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    log = AttestationLog(path, readonly=True)
    seqs = [e.seq for e in log.entries()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= acked
    assert broken(log) == {}


def _execution_entries(
    n: int, keys: list[bytes], nodes: list[str]
) -> list[tuple[bytes, str, dict[str, object]]]:
    from vouch.verifier import config_digest, report_context

    exec_id = keccak(n.to_bytes(8, "big"))
    observations = [
        sign_observation(
            Observation(
                request_id=f"r{n}", feed="ETH/USD", value=3000 + i, observed_at=1, node=nodes[i]
            ),
            keys[i],
        ).model_dump(mode="json")
        for i in range(3)
    ]
    meta = metadata(execution_id=exec_id)
    body = ReportBody(
        chain_id=1,
        receiver=RECEIVER,
        timestamp=1,
        action_hash=b"\x01" * 32,
        payload=SettlementPayload(trade_id=n, price=3001).encode(),
    )
    raw, ctx = (
        encode_report(meta, body),
        report_context(config_digest(1, RECEIVER, 1, 2, 1, nodes), n),
    )
    sigs = ["0x" + sign_report(report_digest(raw, ctx), k).hex() for k in keys[:2]]
    don = {"don_id": 1, "config_version": 2, "forwarder": RECEIVER, "chain_id": 1}
    return [
        (exec_id, "observations", {"observations": observations, "don": don}),
        (
            exec_id,
            "consensus",
            {"mode": "median", "value": 3001, "observations_seq": 2 * n + 1, "f": 1},
        ),
        (
            exec_id,
            "report",
            {
                "raw": "0x" + raw.hex(),
                "context": "0x" + ctx.hex(),
                "signatures": sigs,
                "receiver": RECEIVER,
                "forwarder": RECEIVER,
                "chain_id": 1,
                "don_id": 1,
                "config_version": 2,
            },
        ),
    ]


def test_parallel_audit_finds_exactly_what_the_serial_one_finds(
    tmp_path: Path, monkeypatch
) -> None:
    import vouch.verifier._batch as batch
    from vouch.verifier import audit

    pools: list[object] = []
    real_pool = batch.process_pool

    def spy(workers: int) -> object:
        pools.append(real_pool(workers))
        return pools[-1]

    monkeypatch.setattr(batch, "PARALLEL_THRESHOLD", 100)
    monkeypatch.setattr(batch, "process_pool", spy)

    keys = [bytes([i]) * 32 for i in range(1, 5)]
    nodes = [Account.from_key(k).address for k in keys]
    log = AttestationLog(tmp_path / "big.db")
    items = []
    for n in range(900):
        entries = _execution_entries(n, keys, nodes)
        items += entries
    for i, item in enumerate(items):  # consensus points at the observations entry just before it
        if item[1] == "consensus":
            item[2]["observations_seq"] = i
    victim = items[1500]
    assert victim[1] == "observations"
    victim[2]["observations"][1]["signature"] = victim[2]["observations"][0][
        "signature"
    ]  # a swapped signature
    log.append_many(items)
    signers = {(1, 2): (1, nodes)}
    serial = audit(log, None, signers=signers, workers=1)
    assert pools == []
    parallel = audit(log, None, signers=signers, workers=2)
    assert len(pools) == 1
    assert serial.results == parallel.results
    assert [(f.seq, f.check) for f in parallel.failures] == [(1501, "observation signatures")]
    assert len(parallel.results) > 5000


def test_a_workflow_name_cannot_hide_padding_bytes() -> None:
    with pytest.raises(ValueError, match="workflow_name"):
        metadata(workflow_name="settle\x00")


def test_parallel_audit_keeps_interleaved_executions_whole_and_sees_deleted_rows(
    tmp_path: Path, monkeypatch
) -> None:
    import sqlite3

    import vouch.verifier._batch as batch
    from vouch.verifier import audit

    monkeypatch.setattr(batch, "PARALLEL_THRESHOLD", 100)
    keys = [bytes([i]) * 32 for i in range(1, 5)]
    nodes = [Account.from_key(k).address for k in keys]
    executions = [_execution_entries(n, keys, nodes) for n in range(400)]
    items = []
    for a, b in zip(executions[::2], executions[1::2], strict=True):  # two at once, like workers
        items += [entry for pair in zip(a, b, strict=True) for entry in pair]
    observations_at = {item[0]: i for i, item in enumerate(items) if item[1] == "observations"}
    for item in items:
        if item[1] == "consensus":
            item[2]["observations_seq"] = observations_at[item[0]] + 1
    log = AttestationLog(tmp_path / "interleaved.db")
    log.append_many(items)
    log.close()
    with sqlite3.connect(tmp_path / "interleaved.db") as db:
        db.execute("DELETE FROM entries WHERE seq = 777")
    log = AttestationLog(tmp_path / "interleaved.db", readonly=True)
    signers = {(1, 2): (1, nodes)}
    serial = audit(log, None, signers=signers, workers=1)
    parallel = audit(log, None, signers=signers, workers=2)
    assert serial.results == parallel.results
    failed = {(f.seq, f.check) for f in parallel.failures}
    assert (778, "chain") in failed  # the gap and the broken prev_hash, named at the next entry
    assert all(seq in range(770, 790) for seq, _ in failed)  # only the deleted row's execution


FEED_KEYS = [bytes([i]) * 32 for i in range(1, 5)]
FEED_NODES = [Account.from_key(k).address for k in FEED_KEYS]
FEED_VALUES = {  # feed -> (mode, what the three observing nodes said)
    "ETH/USD": ("median", [3000, 3010, 2990]),
    "FLAG": ("identical", [1, 1, 2]),
    "REGIME": ("mode", [5, 7, 7]),
}


def _feeds_execution(receiver: str = RECEIVER, **meta: object):  # type: ignore[no-untyped-def]
    """A feeds workflow round: per feed, signed observations and a consensus; one feeds report."""
    from vouch.verifier import config_digest, recompute, report_context

    keys, nodes, values = FEED_KEYS, FEED_NODES, FEED_VALUES

    exec_id = keccak(b"feeds round")
    don = {"don_id": 1, "config_version": 2, "forwarder": RECEIVER, "chain_id": 1}
    items: list[tuple[bytes, str, dict[str, object]]] = []
    outcomes = []
    for feed, (mode, observed) in values.items():
        observations = [
            sign_observation(
                Observation(request_id="w1", feed=feed, value=v, observed_at=1, node=nodes[i]),
                keys[i],
            ).model_dump(mode="json")
            for i, v in enumerate(observed)
        ]
        items.append((exec_id, "observations", {"observations": observations, "don": don}))
        value = recompute(mode, observed, 1)
        outcomes.append((feed, mode, value))
        consensus = {"mode": mode, "feed": feed, "value": value, "f": 1}
        items.append((exec_id, "consensus", {**consensus, "observations_seq": len(items)}))
    payload = encode(
        ["string[]", "string[]", "int256[]"],
        [[o[0] for o in outcomes], [o[1] for o in outcomes], [o[2] for o in outcomes]],
    )
    body = ReportBody(
        chain_id=1, receiver=receiver, timestamp=1, action_hash=exec_id, payload=payload
    )
    raw = encode_report(metadata(execution_id=exec_id, **meta), body)
    ctx = report_context(config_digest(1, RECEIVER, 1, 2, 1, nodes), 7)
    sigs = ["0x" + sign_report(report_digest(raw, ctx), k).hex() for k in keys[:2]]
    report = {"raw": "0x" + raw.hex(), "context": "0x" + ctx.hex(), "signatures": sigs}
    items.append((exec_id, "report", {**report, "receiver": receiver, **don}))
    return items


NOBODY = "0x" + "00" * 20


@pytest.mark.parametrize(
    ("meta", "found"),
    [
        ({"workflow_id": keccak(b"eth-feed")}, None),  # a log-only identity: passes
        ({"workflow_id": b"\x22" * 32}, "not a pinned workflow (nor a log-only one"),
        ({"workflow_id": keccak(b"eth-feed"), "workflow_owner": OWNER}, "not a pinned workflow"),
    ],
    ids=["log-only", "id not its name's", "owned"],
)
def test_a_log_only_report_is_bound_by_its_name_when_workflows_are_pinned(
    tmp_path: Path, meta: dict[str, object], found: str | None
) -> None:
    """Receiver and owner zero, id keccak256(name): nothing acts on it; else it must be pinned."""
    from vouch.verifier import Pins, audit

    pins = Pins(
        chain_id=1,
        forwarder=RECEIVER,
        gate=RECEIVER,
        anchor=RECEIVER,
        source="test",
        workflows=(("0x" + "33" * 32, OWNER),),
    )
    meta = {"workflow_name": "eth-feed", "workflow_owner": NOBODY, **meta}
    log = AttestationLog(tmp_path / "log.db")
    log.append_many(_feeds_execution(NOBODY, **meta))
    report = audit(log, None, signers={(1, 2): (1, FEED_NODES)}, pins=pins)
    binding = [r for r in report.results if r.check == "report binding"]
    assert len(binding) == 1
    if found is None:
        assert binding[0].status == "ok" and "log-only workflow 'eth-feed'" in binding[0].detail
    else:
        assert binding[0].status == "fail" and found in binding[0].detail, binding[0].detail


def test_a_feeds_round_with_several_modes_is_recomputed_field_by_field(tmp_path: Path) -> None:
    from vouch.verifier import audit

    signers = {(1, 2): (1, FEED_NODES)}
    honest = AttestationLog(tmp_path / "honest.db")
    honest.append_many(_feeds_execution())
    report = audit(honest, None, signers=signers)
    assert report.ok, report.failures
    recomputed = [f.detail for f in report.results if f.check == "consensus recomputed"]
    assert recomputed == ["median 3000", "identical 1", "mode 7"]
    assert [f.status for f in report.results if f.check == "report contents"] == ["ok"]

    lied = _feeds_execution()
    lied[3][2]["value"] = 2  # the log claims the other flag won
    forged = AttestationLog(tmp_path / "forged.db")
    forged.append_many(lied)
    failures = {(f.seq, f.check): f.detail for f in audit(forged, None, signers=signers).failures}
    assert "identical of the observations is 1, log says 2" in failures[(4, "consensus recomputed")]
    assert "not this execution's consensus" in failures[(7, "report contents")]


STANDALONE = r"""
import importlib.abc, json, sys
BLOCKED = {"agents", "cre_adapters", "vouch"}


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is not installed (auditor's machine)", name=name)
        return None


sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv[1])
import verifier as v
from eth_account import Account

assert v.__file__.startswith(sys.argv[1]), v.__file__
keys = [bytes([i]) * 32 for i in range(1, 5)]
nodes = [Account.from_key(k).address for k in keys]
exec_id = b"\x07" * 32
signed = [
    v.sign_observation(
        v.Observation(request_id="r", feed="ETH/USD", value=p, observed_at=1, node=n), k
    ).model_dump(mode="json")
    for k, n, p in zip(keys, nodes, [3000, 3010, 2990])
]
owner = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
receiver = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
meta = v.ReportMetadata(
    version=1, execution_id=exec_id, timestamp=1, don_id=1, config_version=1,
    workflow_id=b"\x22" * 32, workflow_name="settlement", workflow_owner=owner, report_id=b"\x00\x01",
)
proposal = {"kind": "settlement", "params": {"base_amount": 1}, "facts": [{"feed": "ETH/USD"}]}
action = v.keccak(v.canonical_json(proposal))
body = v.ReportBody(
    chain_id=1, receiver=receiver, timestamp=1, action_hash=action,
    payload=v.SettlementPayload(trade_id=1, price=3000).encode(),
)
raw = v.encode_report(meta, body)
ctx = v.report_context(v.config_digest(1, receiver, 1, 1, 1, nodes), 1)
sigs = ["0x" + v.sign_report(v.report_digest(raw, ctx), k).hex() for k in keys[:2]]
don = {"don_id": 1, "config_version": 1, "forwarder": receiver, "chain_id": 1}
log = v.AttestationLog(sys.argv[2])
log.append(exec_id, "proposal", {"proposal": proposal, "action_hash": "0x" + action.hex(), "trade_id": 1})
obs = log.append(exec_id, "observations", {"observations": signed, "don": don}).seq
log.append(exec_id, "consensus", {"mode": "median", "value": 3000, "observations_seq": obs, "f": 1})
log.append(exec_id, "report", {"raw": "0x" + raw.hex(), "context": "0x" + ctx.hex(),
                                "signatures": sigs, "receiver": receiver, **don})
log.append(exec_id, "submission", {"status": "rejected", "tx_hash": None, "error": "offline"})
log.append(exec_id, "aborted", {"error": "ContractRevert", "detail": "offline"})
report = v.audit(log, None, signers={(1, 1): (1, nodes)})
page = v.render_html(report, log)
replayed = v.replay(log, v.find_execution(log, "0x0707"))
log.export_jsonl(sys.argv[2] + ".jsonl")
copy = v.AttestationLog.import_jsonl(sys.argv[2] + ".jsonl", sys.argv[2] + ".copy")
print(json.dumps({
    "ok": report.ok,
    "checks": sorted({f.check for f in report.results if f.status == "ok"}),
    "html": "<svg" in page,
    "replay": replayed.matches,
    "copy_chain": [f.detail for f in copy.verify_chain()],
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
}))
"""


def test_verifier_runs_alone_with_agents_and_cre_adapters_not_installed(tmp_path: Path) -> None:
    """A copy of verifier/ alone, with vouch's other packages unimportable, audits a log."""
    import json
    import shutil
    import subprocess
    import sys

    from vouch import verifier

    alone = tmp_path / "site"
    shutil.copytree(
        Path(verifier.__file__).parent,
        alone / "verifier",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    script = tmp_path / "audit_alone.py"
    script.write_text(STANDALONE)
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(alone), str(tmp_path / "log.db")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["ok"] and out["html"] and out["replay"] and out["copy_chain"] == []
    assert {"observation signatures", "signers configured", "consensus recomputed"} <= set(
        out["checks"]
    )
    assert {"report signatures", "report contents"} <= set(out["checks"])
    assert {"action hash", "report binding", "entry sequence"} <= set(out["checks"])
    assert out["loaded"] == []


def test_the_standalone_check_really_blocks_the_other_packages(tmp_path: Path) -> None:
    """The blocker the test above relies on: importing agents under it fails."""
    import subprocess
    import sys

    blocker = STANDALONE.split("import verifier as v", maxsplit=1)[0]
    script = tmp_path / "blocked.py"
    script.write_text(blocker + "import cre_adapters\n")
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(tmp_path), "x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "cre_adapters is not installed" in result.stderr


def test_replay_recomputes_each_feed_by_its_logged_mode_and_f(tmp_path: Path) -> None:
    from vouch.verifier import find_execution, replay

    honest = AttestationLog(tmp_path / "honest.db")
    honest.append_many(_feeds_execution())
    result = replay(honest, find_execution(honest, next(honest.entries()).execution_id[:10]))
    assert result.matches, result.divergences
    assert [(o.feed, o.mode, o.recomputed_value) for o in result.outcomes] == [
        ("ETH/USD", "median", 3000),
        ("FLAG", "identical", 1),
        ("REGIME", "mode", 7),
    ]
    assert len(result.answers) == 9 and all(a.signature_ok for a in result.answers)

    lied = _feeds_execution()
    lied[3][2]["value"] = 2  # the log claims the other flag won
    forged = AttestationLog(tmp_path / "forged.db")
    forged.append_many(lied)
    result = replay(forged, "0x" + lied[0][0].hex())
    assert not result.matches
    assert "logged consensus 2 != recomputed identical 1 for FLAG" in result.divergences
    assert any("not this execution's consensus" in d for d in result.divergences)

    split = _feeds_execution()
    for n, signed in enumerate(split[2][2]["observations"]):  # FLAG: three different answers
        signed["observation"]["value"] = n
    tied = AttestationLog(tmp_path / "tied.db")
    tied.append_many(split)
    result = replay(tied, "0x" + split[0][0].hex())
    assert any("identical of FLAG" in d and "does not recompute" in d for d in result.divergences)
