"""``python -m verifier``: audit someone else's attestation log with the verifier alone.

The auditor needs the log file, an RPC URL of the chain it settled on, and the
deployment's addresses (options, or the deployment manifest JSON vouch wrote).
Nothing else of vouch is imported. Exit codes are those of ``vouch audit``:
0 every check passed, 1 findings, 2 could not audit (with the reason).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import Web3Exception

from ._errors import VerifierError
from ._html import render_html
from ._log import AttestationLog
from ._replay import ReplayResult, find_execution, replay
from .audit import AuditReport, ChainReader, Web3ChainReader, audit

EXIT_OK, EXIT_FINDINGS, EXIT_CANNOT_AUDIT = 0, 1, 2
# option -> the contract's name in a vouch deployment manifest
CONTRACTS = {
    "forwarder": "Forwarder",
    "anchor": "AttestationAnchor",
    "gate": "SettlementGate",
    "gateway": "CrossChainGateway",
}


class CannotAudit(VerifierError):
    """The audit could not run: no chain at the URL, an unreadable manifest, a wrong chain."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 findings, 2 cannot audit)."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (VerifierError, OSError, ValueError, Web3Exception) as exc:
        print(f"cannot {args.command}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_AUDIT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m verifier",
        description="Check a vouch attestation log against the chain, trusting neither.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "audit",
        help="re-verify every entry: hash chain, signatures, consensus, transactions, anchors",
        description="Exit 0 when every check passes, 1 on findings, 2 when the log cannot be audited.",
    )
    check.add_argument("log", type=Path, help="the attestation log (SQLite file)")
    check.add_argument(
        "--manifest",
        type=Path,
        help="deployment manifest JSON (vouch's deployments/<chain id>.json): RPC URL and addresses",
    )
    check.add_argument(
        "--rpc-url",
        help="the chain's JSON-RPC URL (default: the manifest's); without one the audit is offline and skips the chain checks",
    )
    for option, name in CONTRACTS.items():
        check.add_argument(
            f"--{option}", metavar="ADDR", help=f"the {name} address (default: the manifest's)"
        )
    check.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes recovering signatures"
    )
    check.add_argument("--json", action="store_true", help="print machine-readable JSON")
    check.add_argument(
        "--html", type=Path, metavar="FILE", help="also write a self-contained HTML report"
    )
    check.add_argument(
        "--verbose", action="store_true", help="list every check, not just the failures"
    )
    check.set_defaults(run=_audit)
    again = commands.add_parser(
        "replay", help="recompute one execution's decision from its logged inputs"
    )
    again.add_argument("log", type=Path)
    again.add_argument("execution", help="execution id, or a unique prefix of it")
    again.set_defaults(run=_replay)
    export = commands.add_parser("export", help="write the log as JSON Lines, hashes unchanged")
    export.add_argument("log", type=Path)
    export.add_argument("out", type=Path)
    export.set_defaults(run=_export)
    imported = commands.add_parser("import", help="rebuild a log file from a JSON Lines export")
    imported.add_argument("source", type=Path)
    imported.add_argument("--into", type=Path, required=True, help="the new log file")
    imported.set_defaults(run=_import)
    return parser


def deployment(args: argparse.Namespace) -> tuple[str | None, dict[str, str | None], int | None]:
    """(RPC URL, contract addresses by option, manifest's chain id) from the options and manifest."""
    manifest: dict[str, Any] = {}
    if args.manifest is not None:
        try:
            manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CannotAudit(f"cannot read the manifest {args.manifest}: {exc}") from None
    contracts = manifest.get("contracts") or {}
    addresses = {o: getattr(args, o) or contracts.get(name) for o, name in CONTRACTS.items()}
    return args.rpc_url or manifest.get("rpc_url") or None, addresses, manifest.get("chain_id")


def connect(url: str, expected_chain_id: int | None) -> ChainReader:
    """A reader over the chain at ``url``, which must answer (and be the manifest's chain)."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:  # noqa: BLE001 - refused, timed out, not JSON-RPC: all "no chain"
        raise CannotAudit(
            f"no chain answers at {url} ({type(exc).__name__}); pass --rpc-url"
        ) from None
    if expected_chain_id is not None and chain_id != int(expected_chain_id):
        raise CannotAudit(
            f"{url} serves chain {chain_id}, the manifest is for chain {expected_chain_id}"
        )
    return Web3ChainReader(w3)


def _audit(args: argparse.Namespace) -> int:
    url, addresses, chain_id = deployment(args)
    log = AttestationLog(args.log, readonly=True)
    if url is None and any(addresses.values()):
        raise CannotAudit("contract addresses need a chain to read: pass --rpc-url")
    chain = connect(url, chain_id) if url is not None else None
    report = audit(
        log,
        chain,
        forwarder=addresses["forwarder"],
        anchor=addresses["anchor"],
        gate=addresses["gate"],
        gateway=addresses["gateway"],
        workers=max(1, args.workers),
    )
    if args.html is not None:
        args.html.write_text(render_html(report, log, f"audit of {args.log}"), encoding="utf-8")
    if args.json:
        results = [r.to_dict() for r in report.results]
        print(json.dumps({"ok": report.ok, "entries": report.entries, "results": results}))
    else:
        where = f"chain at {url}" if url else "offline (no --rpc-url): chain checks skipped"
        print(f"audit of {args.log} against {where}")
        print("\n".join(summary(report, args.verbose)))
    return EXIT_OK if report.ok else EXIT_FINDINGS


def summary(report: AuditReport, verbose: bool = False) -> list[str]:
    """One line per failed check (every check if ``verbose``), a tally per check, the verdict."""
    shown = report.results if verbose else report.failures
    lines = [
        f"{'#' + str(r.seq) if r.seq else 'chain'}\t{r.execution_id[:10]}\t{r.kind}\t{r.check}\t{r.status.upper()}\t{r.detail}"
        for r in sorted(shown, key=lambda r: (r.status != "fail", r.seq))
    ]
    for check, t in report.by_check().items():
        why = f"  (skipped: {t.skipped_because})" if t.skipped_because else ""
        lines.append(f"{check:<24} ok {t.ok:>9,}  fail {t.fail:>9,}  skip {t.skip:>9,}{why}")
    failures = report.failures
    if not failures:
        skipped = sum(r.status == "skip" for r in report.results)
        note = f" ({skipped} skipped)" if skipped else ""
        return [
            *lines,
            f"ok: all {len(report.results)} checks passed on {report.entries} entries{note}",
        ]
    named = sorted({f.seq for f in failures if f.seq})
    alarms = sum(1 for f in failures if not f.seq)
    entries = ", ".join(f"#{seq}" for seq in named[:NAMED_ENTRIES]) or "none"
    if len(named) > NAMED_ENTRIES:
        entries += f", ... ({len(named)} entries in all)"
    tail = f"; {alarms} about the chain (onchain alarms)" if alarms else ""
    return [
        *lines,
        f"FAILED: {len(failures)} checks in {report.entries} entries; failing entries: {entries}{tail}",
    ]


NAMED_ENTRIES = 20  # failing entries the verdict names; each has its own line above


def _replay(args: argparse.Namespace) -> int:
    log = AttestationLog(args.log, readonly=True)
    result = replay(log, find_execution(log, args.execution))
    print("\n".join(replay_lines(result)))
    return EXIT_FINDINGS if result.divergences else EXIT_OK


def replay_lines(result: ReplayResult) -> list[str]:
    """What each node said, the recomputed outcome(s) next to the logged ones, and divergences."""
    lines = [f"replay of {result.execution_id}"]
    for a in sorted(result.answers, key=lambda a: (a.feed, a.value)):
        signature = "ok" if a.signature_ok else "BAD"
        lines.append(
            f"{a.feed}\t{a.node}\t{a.value}\t{a.deviation_bps:+d} bps\tsignature {signature}"
        )
    for o in result.outcomes:
        lines.append(
            f"{o.feed} {o.mode} (f={o.f}): recomputed {o.recomputed_value}, logged {o.logged_value}"
        )
    if not result.outcomes:
        lines.append(
            f"{result.mode}: recomputed {result.recomputed_value}, logged {result.logged_value}, reported {result.reported_value}"
        )
    lines += [f"diverges: {d}" for d in result.divergences]
    if result.matches:
        lines.append("ok: the decision recomputes exactly from its logged inputs")
    return lines


def _export(args: argparse.Namespace) -> int:
    count = AttestationLog(args.log, readonly=True).export_jsonl(args.out)
    print(f"exported {count} entries to {args.out}")
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    log = AttestationLog.import_jsonl(args.source, args.into)
    print(f"imported {sum(1 for _ in log.entries())} entries into {args.into}")
    return EXIT_OK
