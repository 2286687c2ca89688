"""Audit throughput against raw coincurve ecrecover on the same signatures, in one run.

    .venv/bin/python scripts/bench/audit.py [--executions 20000] [--workers 2]

Generates a log of executions from a 4-node DON (f=1): each execution is five
attestations (proposal, 3 signed observations, median consensus, report with
2 signatures, submission), so 20,000 executions = 100,000 attestations carrying
100,000 signatures. Audits it offline (no chain cross-check: signer set given),
then recovers the same signatures with bare coincurve, on one core and on the
audit's worker count, and prints the ratios: wall clock against both raw runs,
and the audit's CPU seconds over all its processes against the 1-core raw CPU
seconds (robust to other work on the machine).

It also measures a floor: a skeleton that makes every library call an offline
audit cannot do without (SQLite rows, the canonical parse and proof, the
entry hash, each observation's two digests, the report digest, every
recovery, one finding tuple per check) with as little Python around them as
it can, and none of the checks. An audit makes these calls and more, so when
the floor itself is under 0.8x of raw on the same processes, that target
needs the per-entry loop out of the interpreter, not a better audit.
Not a test: numbers, not verdicts.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
from coincurve import PrivateKey, PublicKey
from eth_account import Account
from sha3 import keccak_256 as _keccak_256

from vouch.verifier import (
    AttestationLog,
    Observation,
    ReportBody,
    ReportMetadata,
    SettlementPayload,
    _batch,
    audit,
    canonical_json,
    config_digest,
    encode_report,
    keccak,
    report_context,
    report_digest,
)
from vouch.verifier._canonical import parse_exact
from vouch.verifier._signing import OBSERVATION_DOMAIN

N_NODES, F = 4, 1
OWNER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
GATE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def eip191(digest: bytes) -> bytes:
    return keccak(b"\x19Ethereum Signed Message:\n32" + digest)


def sign(key: PrivateKey, digest: bytes, v_offset: int) -> bytes:
    sig = key.sign_recoverable(digest, hasher=None)
    return sig[:64] + bytes([sig[64] + v_offset])


def generate(path: Path, executions: int) -> tuple[list[str], list[tuple[bytes, bytes]]]:
    """Write the log; return the signer set and every (message hash, recoverable signature)."""
    keys = [PrivateKey(keccak(bytes([i]))) for i in range(1, N_NODES + 1)]
    nodes = [Account.from_key(k.secret).address for k in keys]
    digest_cfg = config_digest(31337, GATE, 1, 1, F, nodes)
    log = AttestationLog(path)
    pairs: list[tuple[bytes, bytes]] = []
    batch: list[tuple[bytes, str, dict[str, object]]] = []
    for n in range(executions):
        exec_id = keccak(n.to_bytes(8, "big"))
        proposal = {
            "kind": "settlement",
            "params": {"base_amount": 10**18, "min_price": 1, "max_price": 5 * 10**18, "n": n},
            "facts": [{"feed": "ETH/USD", "aggregation": "median"}],
        }
        action = keccak(canonical_json(proposal))
        observations = []
        for i in range(3):
            obs = Observation(
                request_id=f"r{n}",
                feed="ETH/USD",
                value=3000 * 10**18 + i * 10**15,
                observed_at=1_800_000_000,
                node=nodes[i],
            )
            h = eip191(obs.digest())
            sig = sign(keys[i], h, 27)
            pairs.append((h, sig[:64] + bytes([sig[64] - 27])))
            observations.append(
                {"observation": obs.model_dump(mode="json"), "signature": "0x" + sig.hex()}
            )
        price = sorted(o["observation"]["value"] for o in observations)[1]
        meta = ReportMetadata(
            execution_id=exec_id,
            timestamp=1_800_000_000,
            don_id=1,
            config_version=1,
            workflow_id=b"\x01" * 32,
            workflow_name="settlement",
            workflow_owner=OWNER,
            report_id=b"\x00\x01",
        )
        body = ReportBody(
            chain_id=31337,
            receiver=GATE,
            timestamp=1_800_000_000,
            action_hash=action,
            payload=SettlementPayload(trade_id=n + 1, price=price).encode(),
        )
        raw, ctx = encode_report(meta, body), report_context(digest_cfg, n)
        d = report_digest(raw, ctx)
        sigs = [sign(keys[i], d, 0) for i in (0, 1)]
        pairs += [(d, s) for s in sigs]
        batch += [
            (
                exec_id,
                "proposal",
                {"proposal": proposal, "action_hash": "0x" + action.hex(), "trade_id": n + 1},
            ),
            (
                exec_id,
                "observations",
                {
                    "request_id": f"r{n}",
                    "feed": "ETH/USD",
                    "observations": observations,
                    "don": {"don_id": 1, "config_version": 1, "forwarder": GATE, "chain_id": 31337},
                },
            ),
            (
                exec_id,
                "consensus",
                {"mode": "median", "value": price, "observations_seq": 0, "f": F},
            ),
            (
                exec_id,
                "report",
                {
                    "raw": "0x" + raw.hex(),
                    "context": "0x" + ctx.hex(),
                    "signatures": ["0x" + s.hex() for s in sigs],
                    "signers": nodes[:2],
                    "receiver": GATE,
                    "forwarder": GATE,
                    "don_id": 1,
                    "config_version": 1,
                    "chain_id": 31337,
                },
            ),
            (
                exec_id,
                "submission",
                {
                    "tx_hash": "0x" + keccak(raw).hex(),
                    "block_number": n + 1,
                    "status": "settled",
                    "receipt_status": 1,
                    "gas_used": 190_000,
                    "forwarder": GATE,
                    "receiver": GATE,
                    "error": None,
                },
            ),
        ]
        if len(batch) >= 5_000:
            _flush(log, batch)
    _flush(log, batch)
    log.close()  # checkpoints the WAL: a copy of the file alone then holds every entry
    return nodes, pairs


def _flush(log: AttestationLog, batch: list[tuple[bytes, str, dict[str, object]]]) -> None:
    # consensus entries point at their observations entry, which is the entry before them
    start = log._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]  # noqa: SLF001
    for offset, (_, kind, payload) in enumerate(batch):
        if kind == "consensus":
            payload["observations_seq"] = start + offset  # 1-based seq of the previous entry
    log.append_many(batch)
    batch.clear()


def _recover_chunk(pairs: list[tuple[bytes, bytes]]) -> int:
    for message, signature in pairs:
        PublicKey.from_signature_and_message(signature, message, hasher=None)
    return len(pairs)


def raw_recover(pairs: list[tuple[bytes, bytes]], workers: int) -> tuple[float, float]:
    """Wall and CPU seconds (over all processes) to recover every pair."""
    start, cpu = time.perf_counter(), cpu_seconds()
    if workers == 1:
        _recover_chunk(pairs)
    else:
        size = -(-len(pairs) // (workers * 4))
        with ProcessPoolExecutor(workers) as pool:
            sum(pool.map(_recover_chunk, [pairs[i : i + size] for i in range(0, len(pairs), size)]))
    return time.perf_counter() - start, cpu_seconds() - cpu


_EIP191 = b"\x19Ethereum Signed Message:\n32"
_OBS_START, _OBS_END = b'{"observation":', b',"signature":"'
# what the skeleton reads: payload bytes, and the rest of each entry's hashed text built by
# SQLite (this log's ids and kinds need no JSON escaping)
_FLOOR_ROWS = """SELECT seq, execution_id, kind, CAST(payload AS BLOB), prev_hash, entry_hash,
    CAST('{"created_at":' || created_at || ',"execution_id":"' || execution_id
         || '","kind":"' || kind || '","payload":' AS BLOB),
    CAST(',"seq":' || seq || '}' AS BLOB)
    FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq"""


def floor_part(span: tuple[str, int, int]) -> tuple[int, list[tuple[object, ...]]]:
    """The skeleton's share: every library call of an offline audit over seqs first..last, no checks.

    The leanest glue found: SQLite builds the hashed header, keccak is called
    straight, orjson parses what fits in 64-bit integers and ``parse_exact``
    the rest, each observation's digest is taken over its slice of the
    canonical text. Returns how many signatures recovered to an address (the
    bench checks it recovered them all) and one finding tuple per check an
    audit reports.
    """
    path, first, last = span
    gc.disable()  # as the audit's workers: its tuples make no cycles
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = db.execute(_FLOOR_ROWS, (first, last)).fetchall()
    db.close()
    recover, keccak_256 = _batch._recover_secp, _keccak_256  # noqa: SLF001
    loads, dumps, fromhex = orjson.loads, orjson.dumps, bytes.fromhex
    found: list[tuple[object, ...]] = []
    add, recovered = found.append, 0
    for seq, execution_id, kind, data, prev_hash, entry_hash, head, tail in rows:
        if kind in ("observations", "consensus"):  # integers past 64 bits: json's parse
            value, canonical = parse_exact(data.decode())
            assert canonical is not None
        else:
            value = loads(data)
            assert dumps(value, option=orjson.OPT_SORT_KEYS) == data
        digest = keccak_256(fromhex(prev_hash[2:]) + head + data + tail).hexdigest()
        assert digest == entry_hash[2:]
        add((seq, execution_id, kind, "chain", "ok", ""))
        if kind == "observations":
            end = 0
            for signed in value["observations"]:
                start = data.index(_OBS_START, end) + len(_OBS_START)
                end = data.index(_OBS_END, start)
                inner = keccak_256(OBSERVATION_DOMAIN + data[start:end]).digest()
                message = keccak_256(_EIP191 + inner).digest()
                signature = fromhex(signed["signature"][2:])
                recovered += type(recover(message, signature, signature[64] - 27)) is bytes
            add((seq, execution_id, kind, "observation signatures", "ok", ""))
            add((seq, execution_id, kind, "signers configured", "ok", ""))
        elif kind == "consensus":
            add((seq, execution_id, kind, "consensus parameters", "ok", ""))
            add((seq, execution_id, kind, "consensus recomputed", "ok", ""))
        elif kind == "report":
            signed = report_digest(fromhex(value["raw"][2:]), fromhex(value["context"][2:]))
            for hex_signature in value["signatures"]:
                signature = fromhex(hex_signature[2:])
                recovered += type(recover(signed, signature, signature[64])) is bytes
            add((seq, execution_id, kind, "report signatures", "ok", ""))
            add((seq, execution_id, kind, "report binding", "ok", ""))
            add((seq, execution_id, kind, "report contents", "ok", ""))
        elif kind == "submission":
            add((seq, execution_id, kind, "transaction", "skip", ""))
            add((seq, execution_id, kind, "entry sequence", "ok", ""))
        elif kind == "proposal":  # the action hash: keccak of the canonical proposal
            action = keccak_256(dumps(value["proposal"], option=orjson.OPT_SORT_KEYS)).hexdigest()
            assert action == value["action_hash"][2:]
            add((seq, execution_id, kind, "action hash", "ok", ""))
            add((seq, execution_id, kind, "trade terms", "skip", ""))
    gc.enable()
    return recovered, found


def floor(path: Path, entries: int, workers: int, signatures: int) -> tuple[float, float]:
    """Wall and CPU seconds of the skeleton on ``workers`` processes, parts as the audit makes them."""
    count = workers * 16
    width = -(-entries // count)
    spans = [(str(path), s, min(s + width - 1, entries)) for s in range(1, entries + 1, width)]
    start, cpu = time.perf_counter(), cpu_seconds()
    with ProcessPoolExecutor(workers) as pool:
        done = list(pool.map(floor_part, spans))
    seconds = time.perf_counter() - start
    assert sum(n for n, _ in done) == signatures, "the skeleton did not recover every signature"
    return seconds, cpu_seconds() - cpu


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the audit's worker pool)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        signers, pairs = generate(path, args.executions)
        print(
            f"generated {args.executions * 5:,} attestations ({len(pairs):,} signatures) in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        log = AttestationLog(path, readonly=True)
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), cpu_seconds()
        report = audit(log, None, signers={(1, 1): (F, signers)}, workers=args.workers)
        audit_s, audit_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        assert report.ok, report.failures[:3]
        one, one_cpu = raw_recover(pairs, 1)
        many, _ = raw_recover(pairs, args.workers)
        least, least_cpu = floor(path, args.executions * 5, args.workers, len(pairs))
    n = args.executions * 5
    rows = [
        ("raw coincurve ecrecover, 1 core", len(pairs) / one, one),
        (f"raw coincurve ecrecover, {args.workers} processes", len(pairs) / many, many),
        (f"vouch audit (offline, {args.workers} workers)", len(pairs) / audit_s, audit_s),
        (f"floor: library calls only, {args.workers} processes", len(pairs) / least, least),
    ]
    print(f"\n{'':42} {'signatures/s':>14} {'seconds':>9}")
    for name, rate, secs in rows:
        print(f"{name:42} {rate:14,.0f} {secs:9.2f}")
    print(f"\naudit: {n:,} attestations in {audit_s:.1f}s = {n / audit_s:,.0f} attestations/s")
    print(
        f"ratio to raw ecrecover: {one / audit_s:.2f}x of 1 core, {many / audit_s:.2f}x of {args.workers} processes (target >= 0.8x)"
    )
    print(
        f"floor (the calls an audit cannot skip, no checks): {many / least:.2f}x of {args.workers}"
        f" processes, CPU {least_cpu / one_cpu:.2f}x the 1-core raw; the audit takes"
        f" {audit_s / least:.2f}x the floor's time"
    )
    if many / least < 0.8:
        print(
            "  the floor itself is under 0.8x: an audit that makes these calls from CPython,"
            " one loop turn per entry, stays under 0.8x however lean its checks"
        )
    print(
        f"audit CPU: {audit_cpu:.1f} s over all processes = {audit_cpu / one_cpu:.2f}x the 1-core raw"
        f" CPU ({one_cpu:.1f} s: far less moved by other load than the wall-clock ratios)"
    )
    if load > 0.5:
        print(
            f"note: load average was {load:.1f} when the audit started: other work shared the cores"
        )


if __name__ == "__main__":
    main()
