"""`vouch audit`: run the verifier over the log against the chain and show the result."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vouch.agents import open_checkpoints, trace_prefix
from vouch.verifier import (
    AuditReport,
    LogStore,
    Pins,
    VerifierError,
    Web3ChainReader,
    audit,
    find_execution,
    open_log,
    render_html,
    replay,
)
from vouch.verifier._cli import header, verdict
from vouch.verifier.audit import CONTRACTS, resolve_pins

from ._agent_settlement import ActionProposal
from ._errors import VouchError
from ._settings import VouchSettings
from ._settlement import action_hash
from ._stack import Stack

EXIT_OK, EXIT_FINDINGS, EXIT_CANNOT_AUDIT = 0, 1, 2
_STYLE = {"ok": "[green]ok[/]", "fail": "[red]FAIL[/]", "skip": "[yellow]skip[/]"}


def run_audit(
    settings: VouchSettings,
    console: Console,
    as_json: bool,
    log_path: Path | str | None = None,
    workers: int | None = None,
    html_path: Path | None = None,
    verbose: bool = False,
    pin_flags: dict[str, Any] | None = None,
) -> int:
    """Audit the log; return the exit code (0 all good, 1 findings, 2 could not audit).

    Shows how each check came out, then the failed checks (every check if
    ``verbose``); ``as_json`` prints everything as JSON instead.

    ``pin_flags``: manifest, chain_id, forwarder, gate, anchor, gateway,
    trust_log_addresses. Nothing given: the home's own deployment manifest
    (HOME/deployments/<chain id>.json, written by ``vouch deploy``, outside the
    log) is the pin, and the output says so.
    """
    path = log_path or settings.log_location
    flags = dict(pin_flags or {})
    try:
        log = open_log(path, readonly=True)
        stack = Stack(settings)
        chain = stack.require_chain()  # reads only: never starts a chain
        pins = _pins(settings, chain.chain_id, flags)
        start = time.perf_counter()
        with console.status(
            f"auditing {log.location} against chain {chain.chain_id} at {chain.url}…"
        ):
            report = audit(
                log,
                Web3ChainReader(chain.web3()),
                pins=pins,
                workers=workers or os.cpu_count() or 1,
            )
        report.context.rpc_url = chain.url
        report.context.chain_id = chain.chain_id
        seconds = time.perf_counter() - start
    except (VerifierError, VouchError) as exc:
        if as_json:
            console.file.write(json.dumps({"ok": False, "cannot_audit": str(exc)}) + "\n")
        else:
            console.print(f"[red]cannot audit:[/] {exc}")
        return EXIT_CANNOT_AUDIT
    if html_path is not None:
        html_path.write_text(
            render_html(report, log, f"vouch audit of {log.location}"), encoding="utf-8"
        )
        # with --json, standard output is the JSON alone
        (Console(stderr=True) if as_json else console).print(f"wrote {html_path}")
    if as_json:  # for machines: plain, compact, one line (no pretty-printing of 100k results)
        console.file.write(
            json.dumps(
                {
                    "ok": report.ok,
                    "verdict": verdict(report),
                    "entries": report.entries,
                    "context": report.context.to_dict(report.entries),
                    "results": [r.to_dict() for r in report.results],
                }
            )
            + "\n"
        )
    else:
        show_report(console, report, log.location, verbose)
        console.print(
            f"[dim]{report.entries:,} entries audited in {seconds:.1f} s against chain"
            f" {chain.chain_id} at {chain.url}[/]"
        )
    return EXIT_OK if report.ok else EXIT_FINDINGS


# failed checks listed, and failing entries named in the verdict, without --verbose;
# --json and --html carry them all
SHOWN_FAILURES, SHOWN_ENTRIES = 100, 20


def _pins(settings: VouchSettings, chain_id: int, flags: dict[str, Any]) -> Pins | None:
    """The pins from the flags; with none, the home's own deployment manifest."""
    manifest = flags.get("manifest")
    addresses = {o: flags.get(o) for o in CONTRACTS}
    trust_log = bool(flags.get("trust_log_addresses"))
    if manifest is None and not any(addresses.values()) and flags.get("chain_id") is None:
        home_manifest = settings.deployment_path(chain_id)
        if home_manifest.exists():
            source = (
                f"this home's deployment manifest {home_manifest} (written by `vouch deploy`, "
                "outside the log; an outside auditor pins their own)"
            )
            return resolve_pins(home_manifest, {}, None, trust_log, source)
    return resolve_pins(manifest, addresses, flags.get("chain_id"), trust_log)


def header_lines(report: AuditReport) -> list[str]:
    """Where the audit ran, the pins, and what the newest (unanchored) entries mean."""
    return header(report)


def show_report(console: Console, report: AuditReport, path: Path | str, verbose: bool) -> None:
    """Where it ran, a tally per check, the failed checks (every check if ``verbose``), the verdict."""
    for line in header(report):
        console.print(line, markup=False, highlight=False)
    tallies = Table(title=f"audit of {path}: {report.entries:,} entries", title_justify="left")
    tallies.add_column("check")
    for column in ("ok", "fail", "skip"):
        tallies.add_column(column, justify="right")
    tallies.add_column("skipped because")
    for check, tally in report.by_check().items():
        tallies.add_row(
            check,
            f"{tally.ok:,}",
            f"[red]{tally.fail:,}[/]" if tally.fail else "0",
            f"{tally.skip:,}",
            tally.skipped_because,
        )
    console.print(tallies)
    failures = report.failures
    listed = report.results if verbose else failures
    if listed:
        shown = sorted(listed, key=lambda r: (r.status != "fail", r.seq))
        if not verbose:
            shown = shown[:SHOWN_FAILURES]
        title = "every check, failures first" if verbose else "failed checks"
        table = Table(title=title, title_justify="left")
        for column in ("entry", "execution", "kind", "check", "result", "detail"):
            table.add_column(column)
        for r in shown:
            entry = f"#{r.seq}" if r.seq else "chain"
            execution = r.execution_id[:10] + "…" if r.execution_id else ""
            table.add_row(entry, execution, r.kind, r.check, _STYLE[r.status], r.detail)
        console.print(table)
        if len(shown) < len(listed):
            console.print(
                f"… and {len(listed) - len(shown):,} more failed checks:"
                " --verbose, --json or --html FILE lists them all"
            )
    if failures:
        seqs = sorted({f.seq for f in failures if f.seq})
        named = ", ".join(f"#{seq}" for seq in seqs[:SHOWN_ENTRIES])
        if len(seqs) > SHOWN_ENTRIES:
            named += f", … ({len(seqs):,} entries in all)"
        alarms = sum(1 for f in failures if not f.seq)
        named += f"{'; ' if named else ''}{alarms} onchain alarms" if alarms else ""
        console.print(
            f"[red]✗ {len(failures):,} failed checks[/] in {report.entries:,} entries;"
            f" first failing entries in log order: {named}"
        )
    else:
        skipped = sum(r.status == "skip" for r in report.results)
        note = f" ({skipped:,} skipped)" if skipped else ""
        if report.context.offline:  # never green: nothing was proven against a chain
            console.print(
                f"[yellow]! not verified against a chain: {len(report.results):,} offline checks"
                f" passed on {report.entries:,} entries{note}[/]"
            )
        else:
            console.print(
                f"[green]✓ all {len(report.results):,} checks passed[/] on "
                f"{report.entries:,} entries{note}"
            )


def run_replay(
    settings: VouchSettings, console: Console, execution: str, log_path: Path | str | None = None
) -> int:
    """Recompute one execution's decision from the log; 0 if it matches, 1 if not, 2 if impossible."""
    try:
        log = open_log(log_path or settings.log_location, readonly=True)
        result = replay(log, find_execution(log, execution))
    except VerifierError as exc:
        console.print(f"[red]cannot replay:[/] {exc}")
        return EXIT_CANNOT_AUDIT
    table = Table(title=f"replay of {result.execution_id}", title_justify="left")
    for column in ("feed", "node", "value", "deviation (bps)", "signature"):
        table.add_column(column)
    for a in sorted(result.answers, key=lambda a: (a.feed, a.value)):
        table.add_row(
            a.feed,
            a.node,
            f"{a.value / 10**18:,.8f}",
            f"{a.deviation_bps:+d}",
            "ok" if a.signature_ok else "[red]BAD[/]",
        )
    console.print(table)
    if len(result.outcomes) > 1:  # a feeds round: one consensus per feed, each by its own mode
        for o in result.outcomes:
            console.print(
                f"{o.feed} {o.mode} (f={o.f}): recomputed {o.recomputed_value}, logged {o.logged_value}"
            )
    else:
        console.print(
            f"{result.mode}: recomputed {result.recomputed_value}, logged {result.logged_value}, reported {result.reported_value}"
        )
    divergences = list(result.divergences)
    if result.matches:
        console.print("[green]✓ the decision recomputes exactly from its logged inputs[/]")
    for line in result.divergences:
        console.print(f"[red]✗ {line}[/]")
    agent_notes, agent_divergences = replay_agent_step(settings, log, result.execution_id)
    for line in agent_notes:
        console.print(f"[green]✓[/] {line}")
    for line in agent_divergences:
        console.print(f"[red]✗ {line}[/]")
    divergences += agent_divergences
    return EXIT_FINDINGS if divergences else EXIT_OK


def replay_agent_step(
    settings: VouchSettings, log: LogStore, execution_id: str
) -> tuple[list[str], list[str]]:
    """The agent's side of an execution, from its run's checkpoint: (what holds, what diverges).

    The proposal the log carries must be the propose step's recorded output (what
    the model's tool call produced), its action hash must recompute from it, and
    its trace hash must be the hash of a prefix of the run's recorded trace.
    """
    entries = {e.kind: e for e in log.by_execution(execution_id)}
    hitl, proposal = entries.get("hitl"), entries.get("proposal")
    path = settings.runs_location
    if hitl is None or proposal is None or not (settings.runs_url or Path(path).exists()):
        return ["agent step: no recorded agent run for this execution (nothing to replay)"], []
    run_id = str(hitl.payload["run_id"])
    store = open_checkpoints(path)
    record = store.load_steps(run_id).get("propose")
    if record is None:
        where = getattr(store, "location", path)
        return [], [f"run {run_id} named by the decision has no propose step in {where}"]
    logged = proposal.payload["proposal"]
    problems = []
    if record.output != logged:
        problems.append(f"the logged proposal is not what run {run_id}'s agent proposed")
    recomputed = action_hash(ActionProposal.model_validate(record.output))
    if recomputed != proposal.payload["action_hash"]:
        problems.append(
            f"action hash recomputes to {recomputed}, log says {proposal.payload['action_hash']}"
        )
    spans = trace_prefix(store.load_trace(run_id), logged.get("trace_hash"))
    if spans is None:
        problems.append(f"the proposal's trace hash is no prefix of run {run_id}'s recorded trace")
    notes = [
        f"agent step: run {run_id}'s recorded proposal recomputes action hash {recomputed[:18]}…, "
        f"and its trace hash binds the first {spans} span(s) of the run's trace"
    ]
    return ([] if problems else notes), problems
