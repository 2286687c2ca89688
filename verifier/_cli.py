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

from web3 import Web3
from web3.exceptions import Web3Exception

from ._errors import CannotAudit, VerifierError
from ._html import render_html
from ._log import AttestationLog
from ._replay import ReplayResult, find_execution, replay
from ._store import is_postgres_url, open_log
from .audit import (
    CONTRACTS,
    PIN_FLAGS,
    AuditReport,
    ChainReader,
    Pins,
    Web3ChainReader,
    audit,
    read_manifest,
    resolve_pins,
)

EXIT_OK, EXIT_FINDINGS, EXIT_CANNOT_AUDIT = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 findings, 2 cannot audit)."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (VerifierError, OSError, ValueError, Web3Exception) as exc:
        print(f"cannot {args.command}: {exc}", file=sys.stderr)
        if getattr(args, "json", False):  # standard output stays JSON for machines
            print(json.dumps({"ok": False, "cannot_audit": str(exc)}))
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
        description="Exit 0 when every check passes, 1 on findings, 2 when the log cannot be "
        f"audited. Against a chain, pin the deployment you trust: {PIN_FLAGS}.",
    )
    check.add_argument(
        "log", type=_log_location, help="the attestation log (SQLite file or postgresql:// URL)"
    )
    check.add_argument(
        "--manifest",
        type=Path,
        help="deployment manifest JSON (vouch's deployments/<chain id>.json): the pinned chain id, "
        "addresses, workflow and DON, and the RPC URL",
    )
    check.add_argument(
        "--chain-id", type=int, metavar="ID", help="the pinned chain id (default: the manifest's)"
    )
    check.add_argument(
        "--trust-log-addresses",
        action="store_true",
        help="with nothing pinned, take the contract addresses the log names (weaker: the "
        "operator wrote them); every check resting on them is marked so",
    )
    check.add_argument(
        "--rpc-url",
        help="the chain's JSON-RPC URL (default: the manifest's); without one the audit is offline and skips the chain checks",
    )
    for option, name in CONTRACTS.items():
        check.add_argument(
            f"--{option}",
            metavar="ADDR",
            help=f"the pinned {name} address (default: the manifest's)",
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
    again.add_argument("log", type=_log_location)
    again.add_argument("execution", help="execution id, or a unique prefix of it")
    again.set_defaults(run=_replay)
    export = commands.add_parser("export", help="write the log as JSON Lines, hashes unchanged")
    export.add_argument("log", type=_log_location)
    export.add_argument("out", type=Path)
    export.set_defaults(run=_export)
    imported = commands.add_parser("import", help="rebuild a log file from a JSON Lines export")
    imported.add_argument("source", type=Path)
    imported.add_argument("--into", type=Path, required=True, help="the new log file")
    imported.set_defaults(run=_import)
    return parser


def deployment(args: argparse.Namespace) -> tuple[str | None, Pins | None]:
    """(RPC URL, pins) from the options and the manifest."""
    manifest = read_manifest(args.manifest) if args.manifest is not None else {}
    flags = {o: getattr(args, o) for o in CONTRACTS}
    url = args.rpc_url or manifest.get("rpc_url") or None
    if url is None and not any(flags.values()) and args.chain_id is None and not manifest:
        return None, None  # offline, nothing pinned: only what the log proves about itself
    pins = resolve_pins(args.manifest, flags, args.chain_id, args.trust_log_addresses)
    return url, pins


def connect(url: str, expected_chain_id: int | None) -> tuple[ChainReader, int]:
    """A reader over the chain at ``url``, which must answer (and be the pinned chain)."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:  # noqa: BLE001 - refused, timed out, not JSON-RPC: all "no chain"
        raise CannotAudit(
            f"no chain answers at {url} ({type(exc).__name__}); pass --rpc-url"
        ) from None
    if expected_chain_id is not None and chain_id != int(expected_chain_id):
        raise CannotAudit(f"{url} serves chain {chain_id}, the pinned chain is {expected_chain_id}")
    return Web3ChainReader(w3), chain_id


def _audit(args: argparse.Namespace) -> int:
    url, pins = deployment(args)
    log = open_log(args.log, readonly=True)
    if url is None and pins is not None and not pins.from_log:
        raise CannotAudit(
            "pinned addresses need a chain to check them against: pass --rpc-url "
            "(or leave out the pins for an offline audit)"
        )
    chain, chain_id = connect(url, pins.chain_id if pins else None) if url else (None, None)
    report = audit(log, chain, pins=pins, workers=max(1, args.workers))
    report.context.rpc_url = url
    report.context.chain_id = chain_id
    if args.html is not None:
        args.html.write_text(render_html(report, log, f"audit of {log.location}"), encoding="utf-8")
    if args.json:
        results = [r.to_dict() for r in report.results]
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "verdict": verdict(report),
                    "entries": report.entries,
                    "context": report.context.to_dict(report.entries),
                    "results": results,
                }
            )
        )
    else:
        print(f"audit of {log.location}")
        print("\n".join(header(report)))
        print("\n".join(summary(report, args.verbose)))
    return EXIT_OK if report.ok else EXIT_FINDINGS


def header(report: AuditReport) -> list[str]:
    """Where the audit ran, what it pinned, and what the newest entries' state means."""
    c = report.context
    where = (
        "offline (no --rpc-url): the chain checks are skipped"
        if c.offline
        else f"chain {c.chain_id if c.chain_id is not None else '(id unknown)'} at {c.rpc_url or '(URL unknown)'}"
    )
    lines = [f"against: {where}"]
    if c.pins is None:
        lines.append("pins: none (offline)")
    elif c.pins.from_log:
        lines.append(f"pins: NONE - trust roots taken from {c.pins.source}")
    else:
        named = ", ".join(f"{k} {v}" for k, v in c.pins.addresses().items() if v)
        lines.append(f"pins ({c.pins.source}): chain {c.pins.chain_id}, {named}")
    lines.append(f"newest entries: {c.unanchored_note(report.entries)}")
    for execution, nodes in c.faulty_nodes.items():
        lines.append(f"proven faulty in {execution[:18]}…: {', '.join(nodes)}")
    return lines


def summary(report: AuditReport, verbose: bool = False) -> list[str]:
    """One line per failed check (every check if ``verbose``), a tally per check, the verdict."""
    shown = report.results if verbose else report.failures
    lines = [
        f"{'#' + str(r.seq) if r.seq else 'chain'}\t{r.execution_id[:10]}\t{r.kind}\t{r.check}\t{r.status.upper()}\t{r.detail}"
        for r in sorted(shown, key=lambda r: (r.status != "fail", r.seq))
    ]
    for check, t in report.by_check().items():
        why = f"  (skipped: {t.skipped_because})" if t.skipped_because else ""
        lines.append(f"{check:<30} ok {t.ok:>9,}  fail {t.fail:>9,}  skip {t.skip:>9,}{why}")
    return [*lines, verdict(report)]


def verdict(report: AuditReport) -> str:
    """One line: passed (never green offline), or the first failing entries in log order."""
    failures = report.failures
    if not failures:
        skipped = sum(r.status == "skip" for r in report.results)
        note = f" ({skipped} skipped)" if skipped else ""
        if report.context.offline:
            return (
                f"NOT VERIFIED AGAINST A CHAIN: {len(report.results)} offline checks passed on "
                f"{report.entries} entries{note}; rerun with --rpc-url and pins"
            )
        return f"ok: all {len(report.results)} checks passed on {report.entries} entries{note}"
    named = sorted({f.seq for f in failures if f.seq})
    alarms = sum(1 for f in failures if not f.seq)
    entries = ", ".join(f"#{seq}" for seq in named[:NAMED_ENTRIES]) or "none"
    if len(named) > NAMED_ENTRIES:
        entries += f", ... ({len(named)} entries in all)"
    tail = f"; {alarms} about the chain (onchain alarms)" if alarms else ""
    return f"FAILED: {len(failures)} checks in {report.entries} entries; first failing entries in log order: {entries}{tail}"


NAMED_ENTRIES = 20  # failing entries the verdict names; each has its own line above


def _replay(args: argparse.Namespace) -> int:
    log = open_log(args.log, readonly=True)
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
    count = open_log(args.log, readonly=True).export_jsonl(args.out)
    print(f"exported {count} entries to {args.out}")
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    log = AttestationLog.import_jsonl(args.source, args.into)
    print(f"imported {sum(1 for _ in log.entries())} entries into {args.into}")
    return EXIT_OK


def _log_location(text: str) -> Path | str:
    """A log argument: a postgresql:// URL stays text, anything else is a file path."""
    return text if is_postgres_url(text) else Path(text)
