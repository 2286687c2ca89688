"""The auditor's state and what every check family shares.

Findings, pinned reads, signer sets, an entry's neighbours in its execution, and
signature recovery (inline or from the pool).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from .. import _batch
from .._batch import Recoverer
from .._errors import CannotAudit
from .._report import report_digest
from ._chain import ChainReader
from ._read import (
    _bytes,
    _Entry,
    _observation_job,
)
from ._types import (
    FROM_LOG,
    ApprovalEvent,
    AuditContext,
    Check,
    ConfigEvent,
    Pins,
    Row,
    SignerSets,
    Status,
    TradeTerms,
)

_T = TypeVar("_T")
RESTS_ON_PINS = frozenset(
    (
        Check.SIGNERS_CONFIGURED,
        Check.CONSENSUS_PARAMETERS,
        Check.REPORT_SIGNATURES,
        Check.TRANSACTION,
        Check.DECISION_ONCHAIN,
        Check.TRADE_TERMS,
        Check.REPORT_BINDING,
    )
)


class _AuditorCore:
    """The state of one audit and the helpers the check families (mixins) build on."""

    _recoverer: Recoverer

    def __init__(
        self,
        rows: list[Row],
        chain: ChainReader | None,
        signers: SignerSets | None,
        forwarder: str | None = None,
        anchor: str | None = None,
        workers: int = 1,
        gate: str | None = None,
        gateway: str | None = None,
        pins: Pins | None = None,
    ) -> None:
        self.rows = rows
        if pins is None:  # the library's keywords: whatever addresses are given are pinned
            given = any((forwarder, anchor, gate, gateway))
            pins = Pins(
                forwarder=forwarder,
                anchor=anchor,
                gate=gate,
                gateway=gateway,
                source="audit() arguments",
                from_log=chain is not None and not given,
            )
        self.pins = pins
        forwarder, anchor = forwarder or pins.forwarder, anchor or pins.anchor
        gate, gateway = gate or pins.gate, gateway or pins.gateway
        self.context = AuditContext(pins=pins, offline=chain is None, chain_id=pins.chain_id)
        if chain is not None:
            self.context.chain_id, self.context.rpc_url = chain.where()
        self.entries: list[_Entry] = []
        self.gate = gate
        self.gateway = gateway
        self.workers = workers
        self.linkage = True
        self._jobs: dict[int, list[tuple[str, int]] | str] = {}
        self._results: list[bytes | str] = []
        self._inline = True
        self.chain = chain
        self.signers = dict(signers or {})
        self.forwarder = forwarder
        self.anchor = anchor
        self.found: list[tuple[int, str, str, str, Status, str]] = []  # AuditFinding fields
        self.by_exec_all: dict[str, list[_Entry]] = defaultdict(list)
        self.by_seq: dict[int, _Entry] = {}
        self._histories: dict[str, list[ConfigEvent]] = {}
        self._gates: dict[str, tuple[list[ApprovalEvent], set[int]]] = {}
        self._lower_sets: dict[tuple[int, bool], tuple[list[str], set[str]]] = {}
        self._trade_terms: dict[str, dict[int, TradeTerms]] = {}
        self._mined: list[tuple[int, str, int, int, str]] = []
        self.submitted: list[
            tuple[int, str, str, bool]
        ] = []  # seq, execution, tx, recovered  # seq, execution, block, index, from

    def _guarded(self, entry: _Entry, check: Callable[[_Entry], None]) -> None:
        try:
            check(entry)
        except CannotAudit:
            raise
        except Exception as exc:  # noqa: BLE001 - any input: a finding naming the entry, never a crash
            why = str(exc)[:300]
            name = getattr(check, "__name__", "check").strip("_")
            detail = f"#{entry.seq} unreadable for the {name} check: {type(exc).__name__}: {why}"
            self._add(entry, Check.READABLE, "fail", detail)

    def _add(self, entry: _Entry, check: str, status: Status, detail: str = "") -> None:
        if self.pins.from_log and check in RESTS_ON_PINS:
            detail += FROM_LOG
        self.found.append((entry.seq, entry.execution_id, entry.kind, check, status, detail))

    def _read_chain(self, role: str, address: str, read: Callable[[str], _T]) -> _T:
        """``read(address)``; an error reading a pinned contract means the audit cannot run.

        Reading an address the log named (not pinned) fails as a finding of the entry.
        """
        try:
            return read(address)
        except NotImplementedError:  # a reader that cannot answer this: the check is skipped
            raise
        except Exception as exc:  # noqa: BLE001 - RPC and ABI errors of every kind
            pinned = self.pins.addresses().get(role)
            if pinned and pinned.lower() == address.lower():
                raise CannotAudit(
                    f"cannot read the pinned {role} {address}: {type(exc).__name__}: "
                    f"{str(exc)[:200]} (is it the deployment's address on this chain?)"
                ) from None
            raise ValueError(
                f"the {role} {address} named by the log cannot be read: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from None

    def _pinned(self, entry: _Entry) -> None:
        """Every contract address and chain id the entry names must be the pinned deployment's."""
        p = entry.payload
        named: list[tuple[str, str, Any]] = []
        if entry.kind == "observations" and isinstance(p.get("don"), dict):
            named.append(("forwarder", "don.forwarder", p["don"].get("forwarder")))
            named.append(("chain_id", "don.chain_id", p["don"].get("chain_id")))
        if entry.kind in ("report", "submission"):
            named.append(("forwarder", "forwarder", p.get("forwarder")))
        if entry.kind == "report" and "chain_id" in p:
            named.append(("chain_id", "chain_id", p.get("chain_id")))
        if entry.kind in ("proposal", "hitl"):
            named.append(("gate", "gate", p.get("gate")))
        if entry.kind == "proposal" and "chain_id" in p:
            named.append(("chain_id", "chain_id", p.get("chain_id")))
        pins = {**self.pins.addresses(), "chain_id": self.pins.chain_id}
        problems, checked = [], 0
        for role, key, value in named:
            pinned = pins.get(role)
            if value is None or pinned is None:
                continue
            checked += 1
            if str(value).lower() != str(pinned).lower():
                problems.append(f"{key} {str(value)[:66]} is not the pinned {role} {pinned}")
        if problems:
            return self._add(entry, Check.PINNED, "fail", "; ".join(problems))
        if checked:
            self._add(entry, Check.PINNED, "ok", f"{checked} names match the pinned deployment")
        return None

    def _signer_set(
        self, forwarder: str, don_id: int, version: int, block: int | None
    ) -> tuple[int, list[str]] | None:
        """The signers of (don_id, version) active at ``block``, from the forwarder's ConfigSet history."""
        given = self.signers.get((don_id, version))
        if given is not None:
            return given
        if self.chain is None:
            return None
        if self.pins.forwarder:  # only the pinned forwarder's history configures signers
            forwarder = self.pins.forwarder
        if forwarder not in self._histories:
            self._histories[forwarder] = self._read_chain(
                "forwarder", forwarder, self.chain.config_history
            )
        history = self._histories[forwarder]
        if not history:  # a forwarder that emits no ConfigSet: its current config is all we have
            chain = self.chain
            return self._read_chain(
                "forwarder", forwarder, lambda a: chain.get_config(a, don_id, version)
            )
        active = [
            e
            for e in history
            if (e.don_id, e.config_version) == (don_id, version)
            and (block is None or e.block <= block)
        ]
        return (active[-1].f, active[-1].signers) if active else (0, [])

    def _lowered(self, signers: list[str], bare: bool) -> set[str]:
        """``{s.lower() for s in signers}`` (without "0x" if ``bare``), once per signer list."""
        key = (id(signers), bare)
        cached = self._lower_sets.get(key)
        if cached is None or cached[0] is not signers:  # the list is kept: its id stays its own
            if bare:
                lowered = {s.lower().removeprefix("0x") for s in signers}
            else:
                lowered = {s.lower() for s in signers}
            cached = self._lower_sets[key] = (signers, lowered)
        return cached[1]

    def _block_of(self, entry: _Entry) -> int | None:
        """The block of the submission that followed ``entry`` in its round (None: none did)."""
        submission = self._later(entry, "submission")
        block = submission.payload.get("block_number") if submission else None
        return int(block) if block is not None else None

    def _earlier(self, entry: _Entry, kind: str) -> _Entry | None:
        """The latest ``kind`` entry of ``entry``'s execution logged before it."""
        found = None
        for e in self.by_exec_all[entry.execution_id]:
            if e.seq >= entry.seq:
                break
            if e.kind == kind:
                found = e
        return found

    def _later(self, entry: _Entry, kind: str) -> _Entry | None:
        """The first ``kind`` entry of ``entry``'s execution after it, before any retry."""
        for e in self.by_exec_all[entry.execution_id]:
            if e.seq <= entry.seq:
                continue
            if e.kind == "retry":
                return None
            if e.kind == kind:
                return e
        return None

    def _this_round(self, entry: _Entry, kind: str) -> list[_Entry]:
        """The ``kind`` entries before ``entry`` since its execution's last report or retry.

        An execution whose DON round was cut short and run again (a ``retry``
        entry), or that reported more than once, is audited round by round: a
        report against its own round's consensus, a submission against the
        report just before it.
        """
        found: list[_Entry] = []
        for e in self.by_exec_all[entry.execution_id]:
            if e.seq >= entry.seq:
                break
            if e.kind in ("report", "retry"):
                found = []
            elif e.kind == kind:
                found.append(e)
        return found

    def _collect(self, entries: list[_Entry]) -> None:
        """Queue every signature for recovery; big logs recover in worker processes meanwhile."""
        add = self._recoverer.add
        for entry in entries:
            if entry.kind in ("observations", "report"):
                try:
                    jobs = self._signature_jobs(entry)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    self._jobs[entry.seq] = f"{type(exc).__name__}: {exc}"
                else:
                    self._jobs[entry.seq] = [(claimed, add(job)) for claimed, job in jobs]

    @staticmethod
    def _signature_jobs(entry: _Entry, raw: bytes | None = None) -> list[tuple[str, _batch.Job]]:
        """(claimed signer, recovery job) per signature of an observations or report entry.

        ``raw``: a report's raw bytes, when the caller already decoded them.
        """
        if entry.kind == "observations":
            return [_observation_job(o) for o in entry.payload["observations"]]
        p = entry.payload
        digest = report_digest(_bytes(p["raw"]) if raw is None else raw, _bytes(p["context"]))
        return [("", (digest, _bytes(sig), 0)) for sig in p["signatures"]]

    def _recovered(self, entry: _Entry, raw: bytes | None = None) -> list[tuple[str, bytes | str]]:
        """(claimed signer, recovered 20-byte address or why not) per signature of ``entry``."""
        if self._inline:  # recovered right here, from the same jobs ``_collect`` would queue
            try:
                jobs = self._signature_jobs(entry, raw)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"{type(exc).__name__}: {exc}") from None
            recover = _batch.recover
            return [(claimed, recover(*job)) for claimed, job in jobs]
        queued = self._jobs.get(entry.seq, "no signatures queued")
        if isinstance(queued, str):
            raise ValueError(queued)
        return [(claimed, self._results[index]) for claimed, index in queued]
