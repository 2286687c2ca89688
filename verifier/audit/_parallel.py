"""Planning an audit: the plain path, or an offline audit split by execution across processes."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any, NamedTuple

from .. import _batch
from .._errors import CannotAudit
from .._log import GENESIS
from .._store import LogStore, open_log
from ._chain import ChainReader
from ._entries import _Auditor, duplicate_txs
from ._read import _linkage
from ._types import _BUCKETS_PER_WORKER, AuditContext, AuditFinding, AuditReport, Pins, SignerSets


def audit(
    log: LogStore,
    chain: ChainReader | None = None,
    signers: SignerSets | None = None,
    *,
    forwarder: str | None = None,
    anchor: str | None = None,
    workers: int = 1,
    gate: str | None = None,
    gateway: str | None = None,
    pins: Pins | None = None,
) -> AuditReport:
    """Check every entry of ``log``; chain-dependent checks are skipped when ``chain`` is None.

    Args:
        log: the attestation log.
        chain: reads DON configs, receipts, transactions and events; None audits offline.
        signers: (don_id, config_version) -> (f, signers), for offline audits.
        forwarder: also alarm on every report this forwarder processed that the log does not explain.
        anchor: also check every range anchored on this AttestationAnchor.
        gate: also alarm on every approval, settlement and refund this SettlementGate recorded
            that the log does not explain.
        gateway: also alarm on every message execution (or failed execution) this
            CrossChainGateway recorded that no logged submission explains.
        workers: processes that recover signatures (worth it from a few thousand entries on).
        pins: the deployment the auditor trusts (overrides the address keywords). Without
            pins and address keywords, an audit against a chain takes its trust roots from
            the log and marks every check resting on them.

    Raises:
        CannotAudit: a pinned contract has no code on ``chain`` or cannot be read.

    The one switch between the plain path and the fast (partitioned, offline) path;
    both give the same findings (tests/verifier/test_verifier_audit_fast.py).
    """
    if chain is not None and pins is not None:
        for role, address in pins.addresses().items():
            if address and not chain.has_code(address):
                raise CannotAudit(
                    f"the pinned {role} {address} has no code on this chain: wrong address "
                    "or wrong chain"
                )
    if chain is None and workers > 1:
        with _no_cyclic_gc():  # main's share is allocation without cycles: plan, findings
            executions = log.executions()
            if sum(n for _, _, _, n in executions) >= _batch.PARALLEL_THRESHOLD:
                return _partitioned(log, executions, signers, workers, pins)
    auditor = _Auditor(log.rows(), chain, signers, forwarder, anchor, workers, gate, gateway, pins)
    return auditor.run()


@dataclass
class _Part:
    """One worker's share of an offline audit: whole executions, read from the file by the worker.

    ``first..last`` is a contiguous seq range; an execution belongs to the part
    its first entry falls in, so ``skip`` drops entries of executions begun in
    an earlier part and ``extra`` fetches this part's entries beyond ``last``.
    """

    path: str
    first: int
    last: int
    skip: set[int] = field(default_factory=set)
    extra: list[int] = field(default_factory=list)
    signers: dict[tuple[int, int], tuple[int, list[str]]] = field(default_factory=dict)
    pins: Pins | None = None


def _partitioned(
    log: LogStore,
    executions: list[tuple[Any, int, int, int]],
    signers: SignerSets | None,
    workers: int,
    pins: Pins | None = None,
) -> AuditReport:
    """An offline audit split by execution across processes; linkage checked where rows are read.

    Main reads only each execution's first and last seq and plans the parts; each worker reads
    its own rows from the file, runs the whole per-entry audit (hash, canonical
    form, signatures, consensus, report contents) on complete executions and
    checks the linkage of its seq range from its second row on; main checks
    each range's first row against the range before, so the linkage is checked
    once for every row and the results are exactly those of a serial audit.
    Findings travel back as plain tuples.
    """
    parts = _plan(log, executions, workers * _BUCKETS_PER_WORKER, dict(signers or {}))
    for part in parts:
        part.pins = pins
    submitted: list[tuple[int, str, str, bool]] = []
    done: dict[int, list[AuditFinding]] = {}
    links: dict[int, _Link | None] = {}
    with _batch.process_pool(workers) as pool, _no_cyclic_gc():
        running = {pool.submit(_audit_part, part): i for i, part in enumerate(parts)}
        for future in as_completed(running):  # turn parts into findings while others run
            found, links[running[future]], subs = future.result()
            done[running[future]] = list(map(_as_finding, found))
            submitted += subs
        results = [finding for i in range(len(parts)) for finding in done[i]]
        results += map(_as_finding, duplicate_txs(submitted))
        linkage = _stitch([links[i] for i in range(len(parts))])
        if linkage:
            results = [_finding(f, linkage) for f in results]
        results.sort(key=itemgetter(0))  # nearly sorted already; stable within an entry
    context = AuditContext(pins=pins, offline=True, chain_id=pins.chain_id if pins else None)
    return AuditReport(
        results=results, entries=sum(n for _, _, _, n in executions), context=context
    )


class _Link(NamedTuple):
    """The linkage of one part's seq range: its ends, and the problems inside it."""

    first_seq: int
    first_prev: Any  # as stored: compared as ``_linkage`` compares
    last_seq: int
    last_hash: Any
    problems: dict[int, str]  # of every row after the first


def _stitch(links: list[_Link | None]) -> dict[int, str]:
    """Every linkage problem: the parts' own, and each part's first row against the part before."""
    linkage: dict[int, str] = {}
    prev_seq, prev_hash = 0, GENESIS
    for link in links:
        if link is None:  # no rows in its range (the file changed under the audit)
            continue
        boundary = _linkage(
            [(link.first_seq, "", link.first_prev, link.last_hash)], prev_seq, prev_hash
        )
        linkage.update(boundary)
        linkage.update(link.problems)
        prev_seq, prev_hash = link.last_seq, link.last_hash
    return linkage


def _plan(
    log: LogStore,
    executions: list[tuple[Any, int, int, int]],
    count: int,
    signers: dict[tuple[int, int], tuple[int, list[str]]],
) -> list[_Part]:
    """``count`` parts of equal seq span; an execution belongs to the part of its first entry.

    ``executions``: (execution_id, first seq, last seq, entries) of each
    execution. Only one that spans two parts is read in full: its entries
    outside its home part move there (``skip`` and ``extra``).
    """
    low = min(first for _, first, _, _ in executions)
    high = max(last for _, _, last, _ in executions)
    width = -(-(high - low + 1) // count)
    path = log.reopen_with
    parts = [
        _Part(path, start, min(start + width - 1, high), signers=signers)
        for start in range(low, high + 1, width)
    ]
    for execution_id, first, last, _ in executions:
        home = (first - low) // width
        if (last - low) // width == home:
            continue
        for seq in log.seqs_of(execution_id):
            here = (seq - low) // width
            if here != home:
                parts[here].skip.add(seq)
                parts[home].extra.append(seq)
    return parts


def _audit_part(
    part: _Part,
) -> tuple[list[tuple[Any, ...]], _Link | None, list[tuple[int, str, str, bool]]]:
    log = open_log(part.path, readonly=True)
    try:
        span = log.rows_between(part.first, part.last)
        rows = [r for r in span if r[0] not in part.skip]
        rows += log.rows_at(part.extra)
    finally:
        log.close()
    link = None
    if span:  # rows are (seq, execution_id, kind, payload, created_at, prev_hash, entry_hash)
        tail = ((r[0], r[1], r[5], r[6]) for r in span[1:])
        problems = _linkage(tail, span[0][0], span[0][6])
        link = _Link(span[0][0], span[0][5], span[-1][0], span[-1][6], problems)
    del span
    with _no_cyclic_gc():  # every parsed payload is a container: gen-2 passes cost ~10%
        auditor = _Auditor(rows, None, part.signers, pins=part.pins)
        auditor.linkage = False
        auditor.check_all()
        found, submitted = auditor.found, auditor.submitted
        # freed before the collector is back: its first pass scans what is still alive
        del auditor, rows
    return found, link, submitted


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic collector (the audit makes no cycles; refcounting frees everything)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# AuditFinding._make without its Python frame: a worker's tuples always carry the six fields
_as_finding: Callable[[tuple[Any, ...]], AuditFinding] = partial(tuple.__new__, AuditFinding)


def _finding(fields: tuple[Any, ...], linkage: dict[int, str]) -> AuditFinding:
    """A worker's finding, failing the chain check where linkage (checked here) is broken."""
    finding = _as_finding(fields)
    problem = linkage.get(finding.seq)
    if problem is None or finding.check != "chain":
        return finding
    detail = "; ".join(filter(None, [problem, finding.detail]))
    return finding._replace(status="fail", detail=detail)
