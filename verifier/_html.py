"""The audit as one self-contained HTML page: summary, failures first, per-node plots, drill-down.

No scripts, no external assets: inline CSS and SVG only, so the page can be
mailed to an auditor and opened anywhere.
"""

from __future__ import annotations

import html
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ._batch import recover_one
from ._canonical import dump_parsed, keccak
from ._log import LogEntry, entry_from_row
from ._signing import OBSERVATION_DOMAIN
from ._store import LogStore
from .audit import AuditFinding, AuditReport

FAULT_BPS = 100  # an answer more than 1% from the consensus counts as a fault
# A big log stays a page a browser opens: plots of at most COLUMNS columns (executions
# bucketed, each bucket shown by its worst), at most FAILURES rows of failed checks, and a
# drill-down of the failing executions (at most FAILING) and the latest PASSING passing ones.
COLUMNS, FAILURES, FAILING, PASSING = 300, 1_000, 1_000, 200
SEVERITY = ("ok", "absent", "deviant", "bad signature")  # a bucket shows its worst
CELL = {  # faults-over-time cell colours
    "ok": "#bbf7d0",
    "absent": "#f59e0b",
    "deviant": "#9333ea",
    "bad signature": "#dc2626",
}
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#111;padding:0 1rem}
h1{font-size:1.5rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.verdict{padding:.8rem 1rem;border-radius:6px;font-weight:600}
.ok{background:#dcfce7;color:#14532d}.warn{background:#fef3c7;color:#78350f}.fail{background:#fee2e2;color:#7f1d1d}.skip{color:#92400e}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid #e5e7eb;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f9fafb}code{font-size:12px;word-break:break-all}details{margin:.3rem 0}summary{cursor:pointer}
.legend span{display:inline-block;margin-right:1rem}.sw{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


@dataclass
class _NodeStats:
    answers: int = 0
    deviations: list[tuple[int, int]] = field(default_factory=list)  # (execution index, bps)
    latencies: list[float] = field(default_factory=list)  # ms
    absent: list[int] = field(default_factory=list)  # execution indexes
    faults: dict[int, str] = field(default_factory=dict)  # execution index -> what went wrong


def _e(value: object) -> str:
    return html.escape(str(value))


def _entries(rows: list[tuple[Any, ...]]) -> list[LogEntry]:
    """The rows as entries; a row whose columns do not even convert (text in created_at) is left out.

    The audit reports such a row; the plots only need the readable ones.
    """
    entries = []
    for row in rows:
        try:
            entries.append(entry_from_row(row))
        except (TypeError, ValueError):
            continue
    return entries


def _node_stats(entries: list[LogEntry]) -> tuple[dict[str, _NodeStats], int]:
    """Per node: deviation from consensus per execution, latency if logged, executions it missed."""
    stats: dict[str, _NodeStats] = defaultdict(_NodeStats)
    runs: dict[str, dict[str, LogEntry]] = defaultdict(dict)
    for entry in entries:
        runs[entry.execution_id][entry.kind] = entry
    executions = [r for r in runs.values() if "observations" in r]
    absent: dict[int, set[str]] = {}
    for index, run in enumerate(executions):
        seen: set[str] = set()
        absent[index] = seen
        try:
            _run_stats(stats, index, run, seen)
        except Exception:  # noqa: BLE001, S112 - a malformed entry is the audit's finding, not a plot's crash
            continue
    for index, seen in absent.items():  # every node known by now, also those first seen later
        for node in set(stats) - seen:
            stats[node].absent.append(index)
    return dict(sorted(stats.items())), len(executions)


def _run_stats(
    stats: dict[str, _NodeStats], index: int, run: dict[str, LogEntry], seen: set[str]
) -> None:
    """One execution's answers into ``stats``; the nodes that answered into ``seen``."""
    consensus = run.get("consensus")
    outcome = int(consensus.payload.get("value", 0)) if consensus else 0
    timings = _latencies(run["observations"].payload)
    for signed in run["observations"].payload.get("observations", []):
        obs = signed.get("observation", {})
        node, value = str(obs.get("node")), obs.get("value")
        seen.add(node)
        stats[node].answers += 1
        if not _signed_by(signed, node):
            stats[node].faults[index] = "bad signature"
        if isinstance(value, int) and outcome:
            bps = (value - outcome) * 10_000 // outcome
            stats[node].deviations.append((index, bps))
            if abs(bps) > FAULT_BPS:
                stats[node].faults.setdefault(index, "deviant")
        if node in timings:
            stats[node].latencies.append(timings[node])


def _signed_by(signed: dict[str, object], node: str) -> bool:
    """Whether an observation's signature recovers to the node it names."""
    try:
        digest = keccak(OBSERVATION_DOMAIN + dump_parsed(signed["observation"]))
        message = keccak(b"\x19Ethereum Signed Message:\n32" + digest)
        got = recover_one(message, bytes.fromhex(str(signed["signature"])[2:]), 27)
    except (KeyError, TypeError, ValueError):
        return False
    return isinstance(got, bytes) and "0x" + got.hex() == node.lower()


def _latencies(payload: dict[str, object]) -> dict[str, float]:
    """Each node's answer latency in ms, as the coordinator logged it (us when present)."""
    micro, milli = payload.get("latency_us"), payload.get("latency_ms")
    if isinstance(micro, dict):
        return {str(k): v / 1000 for k, v in micro.items() if isinstance(v, int)}
    if isinstance(milli, dict):
        return {str(k): float(v) for k, v in milli.items() if isinstance(v, int)}
    return {}


def _buckets(runs: int, columns: int) -> int:
    """Executions per plot column: 1 up to ``columns`` executions, then as many as fit."""
    return max(1, -(-runs // max(1, columns)))


def _widest(deviations: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Per bucket of ``size`` executions, the deviation farthest from consensus (outliers stay)."""
    if size == 1:
        return deviations
    kept: dict[int, tuple[int, int]] = {}
    for i, bps in deviations:
        held = kept.get(i // size)
        if held is None or abs(bps) > abs(held[1]):
            kept[i // size] = (i, bps)
    return list(kept.values())


def _deviation_plot(stats: dict[str, _NodeStats], runs: int, columns: int = COLUMNS) -> str:
    width, height, pad = 900, 220, 36
    size = _buckets(runs, columns)
    shown = {node: _widest(s.deviations, size) for node, s in stats.items()}
    points = [bps for kept in shown.values() for _, bps in kept] or [0]
    top = max([1, *(abs(p) for p in points)])

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / max(1, runs - 1))

    def y(v: int) -> float:
        return height / 2 - (height / 2 - pad / 2) * v / top

    lines = [
        f'<line x1="{pad}" y1="{height / 2}" x2="{width - pad}" y2="{height / 2}" stroke="#999"/>'
    ]
    lines.append(f'<text x="2" y="{pad / 2 + 4}" font-size="11">+{top} bps</text>')
    lines.append(f'<text x="2" y="{height - pad / 2}" font-size="11">-{top} bps</text>')
    for color, kept in zip(PALETTE * 4, shown.values(), strict=False):
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in kept)
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/>')
        lines += [
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}"/>' for i, v in kept
        ]
    return f'<svg role="img" aria-label="deviation from consensus" width="{width}" height="{height}">{"".join(lines)}</svg>'


def _fault_plot(stats: dict[str, _NodeStats], runs: int, columns: int = COLUMNS) -> str:
    """One row per node, one cell per execution (or bucket of them) in log order, by what it did."""
    cell, label = 12, 120
    size = _buckets(runs, columns)
    cells = -(-runs // size)
    wide = max(2, min(cell, 780 // max(1, cells)))  # the plot fits the page: narrower cells
    width, height = label + wide * max(1, cells), cell * len(stats) + 4
    rects = []
    for row, (node, s) in enumerate(stats.items()):
        rects.append(f'<text x="0" y="{row * cell + 10}" font-size="10">{_e(node[:12])}…</text>')
        missed = set(s.absent)
        for column in range(cells):
            span = range(column * size, min((column + 1) * size, runs))
            states = ["absent" if i in missed else s.faults.get(i, "ok") for i in span]
            state = max(states, key=SEVERITY.index)
            if size == 1:
                where = f"in execution {span[0] + 1}: {state}"
            else:
                tally = ", ".join(f"{states.count(k)} {k}" for k in SEVERITY if k in states)
                where = f"in executions {span[0] + 1}–{span[-1] + 1}: {tally}"
            rects.append(
                f'<rect x="{label + column * wide}" y="{row * cell}" width="{max(1, wide - 1)}" height="{cell - 1}" '
                f'fill="{CELL[state]}" data-state="{state}"><title>{_e(node)} {where}</title></rect>'
            )
    return f'<svg role="img" aria-label="faults over time" width="{width}" height="{height}">{"".join(rects)}</svg>'


def _fault_legend() -> str:
    meaning = {
        "ok": "answered, signed, within 1% of consensus",
        "absent": "not among the round's signed observations (down, slow, or not needed)",
        "deviant": f"more than {FAULT_BPS} bps from consensus",
        "bad signature": "signature does not recover to the node",
    }
    return (
        '<div class="legend">'
        + "".join(
            f'<span><span class="sw" style="background:{CELL[k]}"></span>{_e(k)}: {_e(v)}</span>'
            for k, v in meaning.items()
        )
        + "</div>"
    )


def _latency_plot(stats: dict[str, _NodeStats]) -> str:
    means = {n: sum(s.latencies) / len(s.latencies) for n, s in stats.items() if s.latencies}
    if not means:
        return "<p>No latencies in this log (older entries do not record them).</p>"
    top, bars = max(means.values()) or 1, []
    for row, (node, ms) in enumerate(means.items()):
        bars.append(f'<text x="0" y="{row * 18 + 12}" font-size="11">{_e(node[:12])}…</text>')
        bars.append(
            f'<rect x="120" y="{row * 18}" width="{600 * ms / top:.0f}" height="14" fill="#2563eb"/>'
        )
        bars.append(
            f'<text x="{126 + 600 * ms / top:.0f}" y="{row * 18 + 12}" font-size="11">{ms:.1f} ms</text>'
        )
    return f'<svg role="img" aria-label="latency per node" width="820" height="{len(means) * 18}">{"".join(bars)}</svg>'


def _findings_table(rows: list[AuditFinding]) -> str:
    body = "".join(
        f'<tr class="{r.status}"><td>{"#" + str(r.seq) if r.seq else "chain"}</td>'
        f'<td><a href="#x{_e(r.execution_id)}"><code>{_e(r.execution_id[:18])}</code></a></td>'
        f"<td>{_e(r.kind)}</td><td>{_e(r.check)}</td><td>{_e(r.status)}</td><td>{_e(r.detail)}</td></tr>"
        for r in rows
    )
    return f"<table><tr><th>entry</th><th>execution</th><th>kind</th><th>check</th><th>result</th><th>detail</th></tr>{body}</table>"


def _node_table(stats: dict[str, _NodeStats]) -> str:
    rows = []
    for color, (node, s) in zip(PALETTE * 4, stats.items(), strict=False):
        devs = [abs(v) for _, v in s.deviations] or [0]
        lat = f"{sum(s.latencies) / len(s.latencies):.1f}" if s.latencies else "-"
        rows.append(
            f'<tr><td><span class="sw" style="background:{color}"></span><code>{_e(node)}</code></td>'
            f"<td>{s.answers}</td><td>{sum(devs) / len(devs):.1f}</td><td>{max(devs)}</td><td>{lat}</td><td>{len(s.absent)}</td><td>{len(s.faults)}</td></tr>"
        )
    head = "<tr><th>node</th><th>answers</th><th>mean |dev| bps</th><th>max |dev| bps</th><th>mean latency ms</th><th>rounds absent</th><th>faulty answers</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _drilldown(
    report: AuditReport, entries: list[LogEntry], failing: int = FAILING, passing: int = PASSING
) -> str:
    """Every failing execution (opened; at most ``failing``), then the latest ``passing`` others."""
    by_exec: dict[str, list[AuditFinding]] = defaultdict(list)
    for r in report.results:
        if r.execution_id:
            by_exec[r.execution_id].append(r)
    failed = [e for e, results in by_exec.items() if any(r.status == "fail" for r in results)]
    opened, broken = set(failed[:failing]), set(failed)
    fine = [e for e in by_exec if e not in broken]
    parts = []
    shown = [*failed[:failing], *fine[max(0, len(fine) - passing) :]]
    of_exec: dict[str, list[LogEntry]] = {e: [] for e in shown}
    for entry in entries:
        if entry.execution_id in of_exec:
            of_exec[entry.execution_id].append(entry)
    for execution in shown:
        results, bad = by_exec[execution], execution in opened
        table = "".join(
            f"<tr><td>#{e.seq}</td><td>{_e(e.kind)}</td><td><code>{_e(e.payload_text[:400])}</code></td></tr>"
            for e in of_exec[execution]
        )
        parts.append(
            f'<details id="x{_e(execution)}"{" open" if bad else ""}><summary class="{"fail" if bad else "ok"}">'
            f"<code>{_e(execution)}</code> — {'FAILED' if bad else 'ok'} ({len(results)} checks)</summary>"
            f"{_findings_table(results)}<table><tr><th>entry</th><th>kind</th><th>payload</th></tr>{table}</table></details>"
        )
    left = [
        f"{n:,} more {what} executions"
        for n, what in ((len(failed) - failing, "failing"), (len(fine) - passing, "passing"))
        if n > 0
    ]
    if left:  # said first: a reader looking for an execution learns it may not be here
        parts.insert(
            0, f'<p id="omitted">Not shown: {" and ".join(left)} (`--json` has every check).</p>'
        )
    return "".join(parts)


def _context(report: AuditReport) -> str:
    """The header: chain id, RPC URL, pins, offline or not, the unanchored newest entries, faulty nodes."""
    c = report.context
    rows = [
        (
            "audit",
            "OFFLINE: no chain read, chain checks skipped" if c.offline else "against a chain",
        ),
        ("chain id", str(c.chain_id) if c.chain_id is not None else "-"),
        ("RPC URL", c.rpc_url or "-"),
    ]
    if c.pins is None:
        rows.append(("pins", "none"))
    elif c.pins.from_log:
        rows.append(("pins", f"NONE: trust roots taken from {c.pins.source}"))
    else:
        rows.append(("pins from", c.pins.source))
        rows.append(("pinned chain id", str(c.pins.chain_id)))
        rows += [(f"pinned {k}", v) for k, v in c.pins.addresses().items() if v]
    rows.append(("newest entries", c.unanchored_note(report.entries)))
    for execution, nodes in c.faulty_nodes.items():
        rows.append((f"proven faulty in {execution[:18]}…", ", ".join(nodes)))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table id="context">{body}</table>'


def render_html(
    report: AuditReport,
    log: LogStore,
    title: str = "vouch audit",
    *,
    columns: int = COLUMNS,
    failures_shown: int = FAILURES,
    failing: int = FAILING,
    passing: int = PASSING,
) -> str:
    """The whole audit as one self-contained HTML document, of a size a browser opens.

    Args:
        report: the audit's results.
        log: the log audited (for the per-node statistics and the drill-down's payloads).
        title: the page's title.
        columns: plot columns at most (beyond, each column is a bucket of executions).
        failures_shown: rows of the failures table at most.
        failing: failing executions in the drill-down at most (opened, in log order).
        passing: passing executions in the drill-down at most (the latest).
    """
    entries = _entries(log.rows())
    stats, runs = _node_stats(entries)
    failures = report.failures
    first = ", ".join(f"#{seq}" for seq in report.first_failing(20))
    if failures:
        verdict = (
            f'<p class="verdict fail" id="verdict">✗ {len(failures):,} failed checks in '
            f"{report.entries:,} entries; first failing entries in log order: {_e(first)}</p>"
        )
    elif report.context.offline:  # nothing proven against a chain: never green
        verdict = (
            f'<p class="verdict warn" id="verdict">! not verified against a chain: '
            f"{len(report.results):,} offline checks passed on {report.entries:,} entries</p>"
        )
    else:
        verdict = f'<p class="verdict ok" id="verdict">✓ all {len(report.results):,} checks passed on {report.entries:,} entries</p>'

    legend = "".join(
        f'<span><span class="sw" style="background:{c}"></span>{_e(n[:10])}…</span>'
        for c, n in zip(PALETTE * 4, stats, strict=False)
    )
    sections = [
        f"<h1>{_e(title)}</h1><p>{_e(log.location)} · generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}</p>",
        _context(report),
        verdict,
        f'<h2 id="failures">Failures ({len(failures)})</h2>'
        + (_findings_table(failures[:failures_shown]) if failures else "<p>None.</p>")
        + (
            f"<p>… and {len(failures) - failures_shown:,} more (`--json` has every check).</p>"
            if len(failures) > failures_shown
            else ""
        ),
        "<h2>Nodes</h2>" + _node_table(stats),
        f'<h3>Answer deviation from consensus, per execution</h3><div class="legend">{legend}</div>'
        + _deviation_plot(stats, runs, columns),
        "<h3>Latency</h3>" + _latency_plot(stats),
        "<h3>Faults over time (one column per execution, in log order"
        + (
            f"; beyond {columns}, per {_buckets(runs, columns)} executions, by the worst"
            if runs > columns
            else ""
        )
        + ")</h3>"
        + _fault_legend()
        + _fault_plot(stats, runs, columns),
        "<h2>Executions</h2>" + _drilldown(report, entries, failing, passing),
    ]
    return f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style></head><body>{"".join(sections)}</body></html>'
