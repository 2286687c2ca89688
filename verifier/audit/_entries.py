"""Per-entry checks: signatures, signer sets, consensus, report contents, transactions, decisions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, TypeVar

from eth_abi import decode as abi_decode

from .. import _batch
from .._batch import Recoverer
from .._canonical import dump_parsed, keccak
from .._consensus import quorum_size, recompute, report_verdict
from .._errors import CannotAudit, ConsensusError
from .._evidence import examine_evidence
from .._hitl import (
    TRADE_REFUNDED,
    rejection_digest,
)
from .._report import report_digest
from .._types import to_checksum
from ._chain import ChainReader
from ._chain_checks import _ChainChecks
from ._grammar import check_sequence
from ._read import (
    _bytes,
    _Entry,
    _HasPayload,
    _linkage,
    _observation_job,
    _read,
    _ReportFields,
    _submitted,
)
from ._types import (
    FROM_LOG,
    REPORT_PROCESSED,
    RULE_CLOCK_SLACK_MS,
    ApprovalEvent,
    AuditContext,
    AuditFinding,
    AuditReport,
    Check,
    ConfigEvent,
    Pins,
    Row,
    SignerSets,
    Status,
    TradeTerms,
)
from ._workflows import _WorkflowChecks

_T = TypeVar("_T")
ACTION_HASH_EXCLUDES = frozenset(("rationale", "trace_hash"))  # see docs/internals.md
KNOWN_KINDS = frozenset(
    (
        "proposal",
        "hitl",
        "observations",
        "consensus",
        "skipped",
        "report",
        "submission",
        "aborted",
        "retry",
        "refund",
        "trigger",
        "capability",
        "finished",
    )
)
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


class _Auditor(_ChainChecks, _WorkflowChecks):
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

    def run(self) -> AuditReport:
        self.check_all()
        self.found.sort(key=itemgetter(0))  # in log order, as the partitioned path's
        found = list(map(AuditFinding._make, self.found))
        return AuditReport(results=found, entries=len(self.entries), context=self.context)

    def check_all(self) -> None:
        """Run every check; the findings, as plain tuples, are in ``self.found``."""
        self.entries, content = _read(self.rows)
        entries = self.entries
        for entry in entries:
            self.by_exec_all[entry.execution_id].append(entry)
        self.by_seq = {entry.seq: entry for entry in entries}
        # a pool recovers while the rest is read; without one, each check recovers its own
        self._inline = not (self.workers > 1 and len(entries) >= _batch.PARALLEL_THRESHOLD)
        if not self._inline:
            self._recoverer = Recoverer(self.workers, expected=len(entries))
            self._collect(entries)
        broken = _linkage([(r[0], r[1], r[5], r[6]) for r in self.rows]) if self.linkage else {}
        for seq, problem in content.items():
            broken[seq] = "; ".join(filter(None, [broken.get(seq), problem]))
        if not self._inline:
            self._results = self._recoverer.results()
        if self.chain is not None:
            self.chain.prefetch(_submitted(entries))
        checks: dict[str, Callable[[_Entry], None]] = {
            "observations": self._observations,
            "consensus": self._consensus,
            "skipped": self._consensus,  # a feed's rule said not to report: still recomputed
            "report": self._report,
            "submission": self._submission,
            "hitl": self._hitl,
            "retry": self._retry,
            "proposal": self._proposal,
            "refund": self._refund_entry,
            "trigger": self._trigger,
            "capability": self._capability,
            "finished": self._finished,
        }
        found, guarded = self.found.append, self._guarded
        pinned = self.pins.chain_id is not None or any(self.pins.addresses().values())
        for entry in entries:
            seq, kind = entry.seq, entry.kind
            breaks = broken.get(seq)
            if breaks is None:
                found((seq, entry.execution_id, kind, "chain", "ok", ""))
            else:
                found((seq, entry.execution_id, kind, "chain", "fail", breaks))
            check = checks.get(kind)
            if check is not None:
                guarded(entry, check)
            elif kind not in KNOWN_KINDS:
                detail = f"unknown entry kind {kind[:40]!r}: no check applies to it"
                found((seq, entry.execution_id, kind, Check.READABLE, "fail", detail))
            if pinned:
                guarded(entry, self._pinned)
        self._whole_log()
        if self.chain is not None and self.anchor:
            self._anchors(self.chain, self.anchor, entries)
        if self.chain is not None and self.forwarder:
            self._unexplained(self.chain, self.forwarder)
        if self.chain is not None and self.gate:
            self._unexplained_approvals(self.chain, self.gate)
            self._unexplained_gate_events(self.chain, self.gate)
        if self.chain is not None and self.gateway:
            self._unexplained_executions(self.chain, self.gateway)

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

    def _observations(self, entry: _Entry) -> None:
        don = entry.payload["don"]
        config = self._signer_set(
            don["forwarder"], don["don_id"], don["config_version"], self._block_of(entry)
        )
        if "evidence" in entry.payload or "absent" in entry.payload:
            self._evidence(entry, None if config is None else config[1])
        seen: set[str] = set()
        for claimed, got in self._recovered(entry):
            if isinstance(got, str) or got.hex() != claimed.lower().removeprefix("0x"):
                signer = got if isinstance(got, str) else f"is signed by {to_checksum(got)}"
                return self._add(
                    entry,
                    "observation signatures",
                    "fail",
                    f"observation claiming {claimed}: {signer}",
                )
            seen.add(claimed.lower())
        self._add(entry, "observation signatures", "ok", f"{len(seen)} distinct signers")
        if config is None:
            return self._add(
                entry, "signers configured", "skip", "no chain and no signer set given"
            )
        f, signers = config
        strangers = sorted(seen - self._lowered(signers, False))
        if strangers:
            names = ", ".join(to_checksum(s) for s in strangers)
            return self._add(entry, "signers configured", "fail", f"not in the DON config: {names}")
        if len(seen) < quorum_size(f):
            return self._add(
                entry,
                "signers configured",
                "fail",
                f"{len(seen)} observations, 2f+1 = {quorum_size(f)} needed",
            )
        self._add(entry, "signers configured", "ok")
        return None

    def _evidence(self, entry: _Entry, signers: list[str] | None) -> None:
        """Faulty nodes: what the round's signed answers prove (``verifier._evidence``).

        Claims (down, slow) prove nothing and are not listed; evidence not
        signed by the node it names, or by no pinned signer, is a finding.
        """
        found = examine_evidence([entry], signers)
        for problem in found.problems:
            self._add(entry, Check.FAULT_EVIDENCE, "fail", f"{problem.node}: {problem.problem}")
        if found.problems:
            return None
        faulty = found.faulty_nodes(entry.execution_id)
        names = [f"{to_checksum(a)} ({', '.join(sorted(c))})" for a, c in sorted(faulty.items())]
        if names:
            nodes = self.context.faulty_nodes.setdefault(entry.execution_id, [])
            nodes += [n for n in names if n not in nodes]
        detail = f"proven faulty: {'; '.join(names)}" if names else "no fault proven"
        return self._add(entry, Check.FAULT_EVIDENCE, "ok", detail)

    def _observations_of(self, entry: _Entry) -> _Entry:
        obs = self.by_seq.get(int(entry.payload["observations_seq"]))
        if obs is None or obs.kind != "observations" or obs.execution_id != entry.execution_id:
            raise ValueError(
                f"entry #{entry.payload['observations_seq']} is not this execution's observations"
            )
        return obs

    def _values(self, entry: _Entry) -> list[Any]:
        obs = self._observations_of(entry)
        values = [o["observation"]["value"] for o in obs.payload["observations"]]
        if entry.payload["mode"] == "median":
            for v in values:  # an int, not a bool
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ValueError("an observed value is not an integer")
        return values

    def _parameters(self, entry: _Entry) -> None:
        """The consensus's logged f is the f of the DON config its observations were made under."""
        f = entry.payload.get("f")
        if not isinstance(f, int) or isinstance(f, bool):
            return self._add(entry, "consensus parameters", "fail", "no integer f logged")
        don = self._observations_of(entry).payload["don"]
        config = self._signer_set(
            don["forwarder"], don["don_id"], don["config_version"], self._block_of(entry)
        )
        if config is None:
            detail = "no chain and no signer set given"
            return self._add(entry, "consensus parameters", "skip", detail)
        if config[0] != f:
            detail = f"logged f={f}, the DON config has f={config[0]}"
            return self._add(entry, "consensus parameters", "fail", detail)
        self._add(entry, "consensus parameters", "ok", f"{entry.payload['mode']}, f={f}")
        return None

    def _consensus(self, entry: _Entry) -> None:
        self._parameters(entry)
        p = entry.payload
        mode = str(p["mode"])
        f = int(p["f"])
        try:
            recomputed = recompute(mode, self._values(entry), f)
        except ConsensusError as exc:
            return self._add(entry, "consensus recomputed", "fail", str(exc))
        if recomputed != p["value"]:
            detail = f"{mode} of the observations is {recomputed}, log says {p['value']}"
            return self._add(entry, "consensus recomputed", "fail", detail)
        self._add(entry, "consensus recomputed", "ok", f"{mode} {recomputed}")
        if "why" in p or "rule" in p:  # a feed round: was reporting (or not) the rule's call?
            self._feed_rule(entry)
        return None

    def _feed_rule(self, entry: _Entry) -> None:
        """The logged verdict follows from the logged deviation/heartbeat rule and what it compared."""
        p, rule = entry.payload, entry.payload.get("rule")
        if rule is None:
            ok = p.get("why") == "always" and entry.kind == "consensus"
            detail = "no deviation/heartbeat rule: reports every round"
            if not ok:
                detail = f"verdict {p.get('why')!r} without the rule's parameters in the log"
            return self._add(entry, "feed rule", "ok" if ok else "fail", detail)
        problems = self._rule_inputs(entry, rule)
        previous = rule["previous"]
        last = (int(previous["value"]), int(previous["at"])) if previous else None
        verdict = report_verdict(
            int(rule["deviation_bps"]),
            int(rule["heartbeat"]),
            last,
            int(p["value"]),
            int(rule["at"]),
        )
        if verdict != p.get("why") or entry.kind != ("consensus" if verdict else "skipped"):
            problems.append(
                f"the rule says {verdict or 'skip'!r}, the log says {entry.kind} {p.get('why')!r}"
            )
        against = (
            f"#{previous['seq']} ({previous['value']} at {previous['at']})"
            if previous
            else "no earlier report"
        )
        detail = f"deviation {rule['deviation_bps']} bps, heartbeat {rule['heartbeat']}s, against {against}: {verdict or 'skip'}"
        self._add(entry, "feed rule", "fail" if problems else "ok", "; ".join(problems) or detail)
        return None

    def _rule_inputs(self, entry: _Entry, rule: dict[str, Any]) -> list[str]:
        """What the rule compared against must be in the log, and its clock the entry's."""
        problems = []
        at_ms = int(rule["at"]) * 1000
        if not entry.created_at - RULE_CLOCK_SLACK_MS <= at_ms <= entry.created_at:
            problems.append(f"decided at {rule['at']}, yet logged at {entry.created_at} ms")
        previous = rule["previous"]
        if previous is None:
            return problems
        earlier = self.by_seq.get(int(previous["seq"]))
        feed = entry.payload.get("feed")
        if earlier is None or earlier.seq >= entry.seq or earlier.kind != "consensus":
            return [*problems, f"#{previous['seq']} is no earlier report of {feed}"]
        before = earlier.payload.get("rule") or {}
        if earlier.payload.get("feed") != feed or earlier.payload["value"] != previous["value"]:
            problems.append(f"#{earlier.seq} did not report {feed} = {previous['value']}")
        if before.get("at") != previous["at"]:
            problems.append(
                f"#{earlier.seq} was decided at {before.get('at')}, not {previous['at']}"
            )
        thresholds = ("deviation_bps", "heartbeat")
        if any(before.get(key) != rule[key] for key in thresholds):
            problems.append(
                f"the thresholds differ from those of #{earlier.seq}, the report it compared against"
            )
        return problems

    def _report(self, entry: _Entry) -> None:
        p = entry.payload
        raw = _bytes(p["raw"])
        fields = _ReportFields.parse(raw)
        config = self._signer_set(
            p["forwarder"], fields.don_id, fields.config_version, self._block_of(entry)
        )
        recovered = [got for _, got in self._recovered(entry, raw)]
        unusable = [got for got in recovered if isinstance(got, str)]
        if unusable:
            self._add(entry, "report signatures", "fail", unusable[0])
        else:
            signers = [a for a in recovered if isinstance(a, bytes)]
            self._report_signers(entry, signers, config)
            self._report_binding(entry, raw, fields, signers)
        self._report_contents(entry, fields)

    def _report_binding(
        self, entry: _Entry, raw: bytes, fields: _ReportFields, signers: list[bytes]
    ) -> None:
        """The raw report's identity fields are the entry's, its DON's and the pinned deployment's."""
        p, problems = entry.payload, []
        if "0x" + raw[1:33].hex() != entry.execution_id.lower():
            problems.append(
                f"the report's execution id 0x{raw[1:33].hex()[:16]}… is not the entry's "
                f"{entry.execution_id[:18]}…"
            )
        for key, value in (("don_id", fields.don_id), ("config_version", fields.config_version)):
            if key in p and p[key] != value:
                problems.append(f"logged {key} {p[key]!r} is not the report's {value}")
        if self.pins.don_id is not None and fields.don_id != self.pins.don_id:
            problems.append(
                f"the report's DON {fields.don_id} is not the pinned DON {self.pins.don_id}"
            )
        workflow = ("0x" + raw[45:77].hex(), "0x" + raw[87:107].hex())
        pinned = {(w.lower(), o.lower()) for w, o in self.pins.workflows}
        log_only = _log_only_identity(raw, fields)
        if pinned and workflow not in pinned and not log_only:
            problems.append(
                f"workflow {workflow[0][:18]}… of owner {workflow[1]} is not a pinned workflow"
                + (
                    " (nor a log-only one: receiver and owner zero, id keccak256 of its name)"
                    if fields.receiver == bytes(20)
                    else ""
                )
            )
        logged = [str(s).lower() for s in p.get("signers", [])]
        if "signers" in p and logged != ["0x" + s.hex() for s in signers]:
            problems.append("the logged signers are not the signers the signatures recover to")
        status: Status = "fail" if problems else "ok"
        detail = "; ".join(problems)
        if not problems and log_only and workflow not in pinned:
            detail = f"log-only workflow {log_only!r}: no contract acts on it"
        self._add(entry, Check.REPORT_BINDING, status, detail)

    def _report_signers(
        self, entry: _Entry, signers: list[bytes], config: tuple[int, list[str]] | None
    ) -> None:
        if len(set(signers)) != len(signers):
            return self._add(entry, "report signatures", "fail", "a signer signed twice")
        if config is None:
            return self._add(entry, "report signatures", "skip", "no chain and no signer set given")
        f, allowed = config
        known = self._lowered(allowed, True)
        strangers = [to_checksum(s) for s in signers if s.hex() not in known]
        if strangers:
            detail = f"not in the DON config: {', '.join(strangers)}"
            return self._add(entry, "report signatures", "fail", detail)
        if len(signers) != f + 1:
            detail = f"{len(signers)} signatures, f+1 = {f + 1} required"
            return self._add(entry, "report signatures", "fail", detail)
        self._add(entry, "report signatures", "ok", f"{len(signers)} of {len(allowed)} signers")
        return None

    def _report_contents(self, entry: _Entry, fields: _ReportFields) -> None:
        proposal = self._earlier(entry, "proposal")
        p = entry.payload
        problems = []
        if (
            fields.chain_id != int(p["chain_id"])
            or "0x" + fields.receiver.hex() != p["receiver"].lower()
        ):
            problems.append("body's chain id or receiver differ from the logged target")
        agreed = self._this_round(entry, "consensus")
        if "abi_types" in p:  # a workflow's report to any receiver: decoded by its declared types
            problems += self._workflow_report_problems(entry, fields)
        elif proposal is not None or len(fields.payload) == 64:  # (tradeId, price)
            consensus = agreed[-1] if agreed else None
            problems += _settlement_problems(fields, proposal, consensus)
        else:
            problems += _outcome_problems(fields, entry.execution_id, agreed)
        self._add(entry, "report contents", "fail" if problems else "ok", "; ".join(problems))

    def _submission(self, entry: _Entry) -> None:
        p = entry.payload
        if not p.get("tx_hash"):
            return self._add(
                entry, "transaction", "ok", f"rejected before mining: {p.get('error')}"
            )
        if self.chain is None:
            return self._add(entry, "transaction", "skip", "no chain to check against")
        receipt = self.chain.get_receipt(p["tx_hash"])
        if receipt is None:
            return self._add(entry, "transaction", "fail", f"{p['tx_hash']} is not on the chain")
        problems = self._receipt_problems(entry, receipt)
        self._add(
            entry,
            "transaction",
            "fail" if problems else "ok",
            "; ".join(problems) or f"block {receipt['blockNumber']}",
        )
        return None

    def _receipt_problems(self, entry: _Entry, receipt: Mapping[str, Any]) -> list[str]:
        p = entry.payload
        problems = []
        logged_status = p.get("receipt_status", 1)  # a relay logs only mined, successful ones
        if int(receipt["blockNumber"]) != int(p["block_number"]) or int(receipt["status"]) != int(
            logged_status
        ):
            problems.append("block or receipt status differ from the chain")
        if "gas_used" in p and int(receipt.get("gasUsed", -1)) != int(p["gas_used"]):
            problems.append(
                f"logged gas_used {p['gas_used']} is not the receipt's {receipt.get('gasUsed')}"
            )
        report = self._earlier(entry, "report")
        args = None if self.chain is None else self.chain.get_report_args(p["tx_hash"])
        if report is None or args is None or args[1] != _bytes(report.payload["raw"]):
            problems.append("the transaction did not carry this execution's logged report")
        elif args[2] != _bytes(report.payload["context"]) or ["0x" + s.hex() for s in args[3]] != [
            str(s).lower() for s in report.payload["signatures"]
        ]:
            problems.append(
                f"the report context or signatures in the transaction are not those logged in #{report.seq}"
            )
        problems += self._forwarder_problems(entry, receipt)
        problems += self._receiver_problems(entry, report, receipt)
        delivered = _delivered(receipt, self.pins.forwarder)
        if delivered is None or delivered != (p["status"] in ("settled", "delivered")):
            problems.append(
                f"ReportProcessed result {delivered} does not match status {p['status']!r}"
            )
        return problems

    def _forwarder_problems(self, entry: _Entry, receipt: Mapping[str, Any]) -> list[str]:
        """The transaction went to the pinned forwarder, whose ReportProcessed names this execution."""
        problems = []
        forwarder = self.pins.forwarder or str(entry.payload.get("forwarder") or "")
        to = str(receipt.get("to") or "")
        if to and forwarder and to.lower() != forwarder.lower():
            problems.append(f"the transaction went to {to}, not the pinned forwarder {forwarder}")
        events = [
            log
            for log in receipt.get("logs", [])
            if log["topics"] and bytes(log["topics"][0]) == REPORT_PROCESSED
        ]
        if forwarder and any(
            str(log.get("address", forwarder)).lower() != forwarder.lower() for log in events
        ):
            problems.append(f"a ReportProcessed in the receipt was not emitted by {forwarder}")
        for log in events:
            if (
                len(log["topics"]) > 2
                and any(bytes(log["topics"][2]))
                and "0x" + bytes(log["topics"][2]).hex() != entry.execution_id.lower()
            ):
                problems.append("the receipt's ReportProcessed names another execution id")
        block, index = int(receipt["blockNumber"]), int(receipt.get("transactionIndex", 0))
        self._mined.append(
            (entry.seq, entry.execution_id, block, index, str(receipt.get("from", "")))
        )
        return problems

    def _proposal(self, entry: _Entry) -> None:
        """The action hash recomputes from the logged proposal; the gate escrowed exactly its terms."""
        p = entry.payload
        proposal = p.get("proposal")
        if not isinstance(proposal, dict):
            return self._add(entry, Check.ACTION_HASH, "fail", "no proposal logged")
        body = {k: v for k, v in proposal.items() if k not in ACTION_HASH_EXCLUDES}
        recomputed = "0x" + keccak(dump_parsed(body)).hex()  # parsed: float-free already
        if recomputed != str(p.get("action_hash", "")).lower():
            detail = f"the action hash recomputes to {recomputed[:18]}…, the log says {str(p.get('action_hash'))[:18]}…"
            return self._add(entry, Check.ACTION_HASH, "fail", detail)
        self._add(entry, Check.ACTION_HASH, "ok", f"{recomputed[:18]}… recomputed")
        gate = self.pins.gate or (str(p.get("gate")) if self.pins.from_log else None)
        if self.chain is None or not gate:
            why = "no chain to check against" if self.chain is None else "no gate pinned"
            return self._add(entry, Check.TRADE_TERMS, "skip", why)
        try:
            created = self._trades(gate).get(int(p["trade_id"]))
        except NotImplementedError:
            detail = "this chain reader reads no trades"
            return self._add(entry, Check.TRADE_TERMS, "skip", detail)
        if created is None:
            detail = f"the gate {gate} never created trade #{p['trade_id']}"
            return self._add(entry, Check.TRADE_TERMS, "fail", detail)
        params = proposal.get("params") or {}
        problems = [
            f"{name} {params.get(name)!r} is not the gate's {value}"
            for name, value in (
                ("base_amount", created.base_amount),
                ("min_price", created.min_price),
                ("max_price", created.max_price),
            )
            if params.get(name) != value
        ]
        if created.action_hash != recomputed:
            problems.append(f"the gate escrowed trade #{created.trade_id} for another action hash")
        detail = (
            "; ".join(problems)
            or f"trade #{created.trade_id} created in block {created.block} with these terms"
        )
        self._add(entry, Check.TRADE_TERMS, "fail" if problems else "ok", detail)
        return None

    def _refund_entry(self, entry: _Entry) -> None:
        """A refund: of this execution's trade, never settled, and the gate's TradeRefunded in its tx."""
        p, problems = entry.payload, []
        trade_id = int(p["trade_id"])
        proposal = self._earlier(entry, "proposal")
        if proposal is None or int(proposal.payload.get("trade_id", -1)) != trade_id:
            problems.append(f"trade #{trade_id} is not this execution's proposed trade")
        settled = [
            e.seq
            for e in self.by_exec_all[entry.execution_id]
            if e.kind == "submission" and e.payload.get("status") in ("settled", "delivered")
        ]
        if settled:
            problems.append(f"the execution settled in #{settled[0]}, yet logs a refund")
        if self.chain is None:
            detail = "; ".join(problems) or "no chain to check the refund against"
            return self._add(entry, Check.REFUND, "fail" if problems else "skip", detail)
        gate = self.pins.gate or str(p.get("gate"))
        receipt = self.chain.get_receipt(str(p["tx_hash"]))
        refunded = [
            log
            for log in (receipt or {}).get("logs", [])
            if log["topics"]
            and bytes(log["topics"][0]) == TRADE_REFUNDED
            and str(log.get("address", gate)).lower() == gate.lower()
            and int.from_bytes(bytes(log["topics"][1]), "big") == trade_id
        ]
        if not refunded:
            problems.append(
                f"tx {str(p['tx_hash'])[:18]}… has no TradeRefunded({trade_id}) from {gate}"
            )
        detail = "; ".join(problems) or f"trade #{trade_id} refunded by the gate"
        self._add(entry, Check.REFUND, "fail" if problems else "ok", detail)
        return None

    def _trades(self, gate: str) -> dict[int, TradeTerms]:
        if gate.lower() not in self._trade_terms:
            chain = self.chain
            assert chain is not None
            self._trade_terms[gate.lower()] = self._read_chain("gate", gate, chain.trades_created)
        return self._trade_terms[gate.lower()]

    def _whole_log(self) -> None:
        """Checks over the whole log: each execution's sequence, one transaction per submission, order."""
        required = self._approvals_required()
        for entries in self.by_exec_all.values():
            try:
                approval = None
                if required is not None:
                    trade = next(
                        (e.payload.get("trade_id") for e in entries if e.kind == "proposal"), None
                    )
                    approval = None if trade is None else int(trade) in required
                kind, problems = check_sequence(entries, approval)
            except Exception as exc:  # noqa: BLE001 - any input: a finding, never a crash
                kind, problems = "?", [(entries[0].seq, f"unreadable: {type(exc).__name__}: {exc}")]
            for seq, problem in problems:
                self._add(self.by_seq[seq], Check.SEQUENCE, "fail", problem)
            if not problems:
                self._add(
                    entries[-1], Check.SEQUENCE, "ok", f"{kind}: {len(entries)} entries in order"
                )
        self._one_tx_per_submission()
        self._chain_order()

    def _approvals_required(self) -> set[int] | None:
        gate = self.pins.gate
        if self.chain is None or not gate:
            return None
        try:
            return self._read_chain("gate", gate, self.chain.approvals_requested)
        except NotImplementedError:
            return None

    def _one_tx_per_submission(self) -> None:
        """Collect each mined submission; check them here unless a partitioned audit does it in main."""
        for entry in self.entries:
            tx = entry.payload.get("tx_hash") if entry.kind == "submission" else None
            if isinstance(tx, str) and tx:
                recovered = bool(entry.payload.get("recovered"))
                self.submitted.append((entry.seq, entry.execution_id, tx.lower(), recovered))
        if self.linkage:  # a whole log here (a part's are checked together in main)
            self.found += duplicate_txs(self.submitted)

    def _chain_order(self) -> None:
        """Log order must not contradict chain order: within an execution, and per sending account."""
        last_of: dict[str, tuple[int, int, int]] = {}
        for seq, execution_id, block, index, sender in self._mined:
            for key in (execution_id, "from:" + sender.lower() if sender else ""):
                if not key:
                    continue
                before = last_of.get(key)
                if before is not None and (block, index) < before[:2]:
                    who = "its execution" if key == execution_id else f"sender {sender}"
                    detail = (
                        f"mined in block {block} (tx {index}), before #{before[2]} of {who} "
                        f"(block {before[0]}), yet logged after it"
                    )
                    self._add(self.by_seq[seq], Check.CHAIN_ORDER, "fail", detail)
                last_of[key] = max(before or (0, 0, 0), (block, index, seq))

    def _retry(self, entry: _Entry) -> None:
        """A DON round run again: only after earlier attempts of this execution that mined nothing.

        The entries it names must be this execution's, logged before it; and no
        submission of the execution before it may have been mined as delivered
        (running a delivered execution again is a second settlement attempt).
        """
        earlier = [e for e in self.by_exec_all[entry.execution_id] if e.seq < entry.seq]
        mine = {e.seq for e in earlier}
        named = [int(seq) for seq in entry.payload.get("earlier_seqs", [])]
        problems = []
        strangers = [seq for seq in named if seq not in mine]
        if strangers:
            problems.append(
                f"names entries that are not this execution's earlier ones: {strangers}"
            )
        delivered = [
            e.seq
            for e in earlier
            if e.kind == "submission"
            and e.payload.get("tx_hash")
            and e.payload.get("status") in ("settled", "delivered")
        ]
        if delivered:
            problems.append(f"the execution was already delivered onchain (#{delivered[0]})")
        detail = "; ".join(problems) or f"after {len(named)} entries of a cut-short round"
        self._add(entry, "retry", "fail" if problems else "ok", detail)

    def _hitl(self, entry: _Entry) -> None:
        """A human's decision: signed by the approver it names; approvals match the chain."""
        p = entry.payload
        decision, approver = p["decision"], to_checksum(p["approver"])
        if decision not in ("approved", "rejected"):
            return self._add(entry, "approver signature", "fail", f"unknown decision {decision!r}")
        digest = _bytes(p["digest"])
        if decision == "rejected" and digest != rejection_digest(p):
            detail = "the signed digest is not the digest of this rejection"
            return self._add(entry, "approver signature", "fail", detail)
        got = _batch.recover_one(digest, _bytes(p["signature"]), 27)
        if isinstance(got, str) or to_checksum(got) != approver:
            signer = got if isinstance(got, str) else f"signed by {to_checksum(got)}"
            return self._add(entry, "approver signature", "fail", f"claims {approver}: {signer}")
        self._add(entry, "approver signature", "ok", f"{decision} by {approver}")
        if self.chain is None:
            return self._add(entry, "decision onchain", "skip", "no chain to check against")
        problems = self._decision_problems(self.chain, p, approver, digest)
        detail = "; ".join(problems) or f"trade #{p['trade_id']} {decision}, matches the gate"
        self._add(entry, "decision onchain", "fail" if problems else "ok", detail)
        return None

    def _decision_problems(
        self, chain: ChainReader, p: dict[str, Any], approver: str, digest: bytes
    ) -> list[str]:
        gate, trade_id, block = p["gate"], int(p["trade_id"]), int(p["block_number"])
        problems = []
        if not chain.is_approver(gate, approver, block):
            problems.append(f"{approver} did not hold APPROVER_ROLE at block {block}")
        events = [e for e in self._gate_events(chain, gate)[0] if e.trade_id == trade_id]
        if p["decision"] == "rejected":
            if events or trade_id in self._gate_events(chain, gate)[1]:
                problems.append(f"trade #{trade_id} was rejected, yet approved or settled onchain")
            return problems
        if digest != chain.approval_digest(gate, trade_id, block):
            problems.append(f"the signed digest is not the gate's approvalDigest({trade_id})")
        if p.get("tx_hash"):
            matching = [e for e in events if e.tx_hash.lower() == str(p["tx_hash"]).lower()]
            if not matching or matching[0].approver != approver or matching[0].block != block:
                problems.append(f"no TradeApproved({trade_id}, {approver}) in tx {p['tx_hash']}")
        return problems


def _settlement_problems(
    fields: _ReportFields, proposal: _Entry | None, consensus: _Entry | None
) -> list[str]:
    """A settlement report: (tradeId, price) at the consensus price, for the proposal's action."""
    if len(fields.payload) != 64:
        return ["report body does not carry a settlement payload (tradeId, price)"]
    problems = []
    price = int.from_bytes(fields.payload[32:64], "big")
    if consensus is not None and price != int(consensus.payload["value"]):
        problems.append("reported price is not the consensus value")
    if proposal is not None and "0x" + fields.action_hash.hex() != proposal.payload.get(
        "action_hash"
    ):
        problems.append("action hash differs from the proposal's")
    return problems


def _outcome_problems(
    fields: _ReportFields, execution_id: str, agreed: Sequence[_HasPayload]
) -> list[str]:
    """A feeds report (every field one logged consensus) or a message report (its hash agreed)."""
    outcomes = sorted(
        (str(e.payload.get("feed")), e.payload["mode"], e.payload["value"]) for e in agreed
    )
    try:
        feeds, modes, values = abi_decode(["string[]", "string[]", "int256[]"], fields.payload)
    except Exception:  # noqa: BLE001 - not a feeds payload: a message, attested by its hash
        digest = keccak(fields.payload)
        if [value for _, _, value in outcomes] != [int.from_bytes(digest, "big") >> 1]:
            return ["the agreed value is not the hash of the reported message"]
        if fields.action_hash != digest:
            return ["action hash is not the hash of the reported message"]
        return []
    problems = []
    if sorted(zip(feeds, modes, values, strict=True)) != outcomes:
        problems.append("reported (feed, mode, value) fields are not this execution's consensus")
    if "0x" + fields.action_hash.hex() != execution_id.lower():
        problems.append("a feeds report's action hash must be its execution id")
    return problems


def _delivered(receipt: Mapping[str, Any], forwarder: str | None = None) -> bool | None:
    for log in receipt.get("logs", []):
        topics = [bytes(t) for t in log["topics"]]
        if forwarder and str(log.get("address", forwarder)).lower() != forwarder.lower():
            continue
        if topics and topics[0] == REPORT_PROCESSED:
            return bool(int.from_bytes(bytes(log["data"])[-32:], "big"))
    return None


def duplicate_txs(
    submitted: Sequence[tuple[int, str, str, bool]],
) -> list[tuple[int, str, str, str, Status, str]]:
    """One mined transaction backs one submission.

    ``submitted``: (seq, execution id, lower-case tx hash, recovered) in log
    order. The one exception: a ``recovered`` submission (a resumed run logging
    the transaction its crashed run mined) of the same execution.
    """
    first: dict[str, tuple[int, str]] = {}
    found: list[tuple[int, str, str, str, Status, str]] = []
    for seq, execution_id, tx, recovered in sorted(submitted):
        earlier = first.setdefault(tx, (seq, execution_id))
        if earlier[0] == seq or (earlier[1] == execution_id and recovered):
            continue
        detail = (
            f"tx {tx[:18]}… already backs submission #{earlier[0]} (execution {earlier[1][:18]}…)"
        )
        found.append((seq, execution_id, "submission", Check.ONE_TX_ONE_SUBMISSION, "fail", detail))
    return found


def _log_only_identity(raw: bytes, fields: _ReportFields) -> str | None:
    """A log-only workflow's name when the report carries that identity, else None.

    A report no contract receives (receiver zero) of a workflow no one owns
    onchain (owner zero) is bound by its name alone: its workflow id must be
    keccak256 of the name the metadata carries (``verifier.workflow_id``), so
    no pinned workflow's id can be passed off as one.
    """
    if fields.receiver != bytes(20) or raw[87:107] != bytes(20):
        return None
    name = raw[77:87].rstrip(b"\x00")
    if not name or keccak(name) != raw[45:77]:
        return None
    return name.decode("latin-1")
