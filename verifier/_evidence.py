"""Evidence of faulty nodes: what a round's signed answers prove, checked from the log alone.

When a round succeeds despite faulty nodes, its ``observations`` entry keeps
what the coordinator saw (see docs/internals.md, "observations")::

    "absent":   [{"node", "address", "cause", "detail"}, ...]        claims
    "evidence": [{"node", "address", "cause", "observations": [...]}] signed answers left out
    "don":      {..., "max_observation_age", "observation_band_bps"}  the rules they broke

A claim ("node-3 was down", "node-4 was slow") proves nothing: the
coordinator could invent it. A signed answer does: recovering its signature
names the key that said it. This module keeps only what signatures prove:

- ``equivocation``: two observations one key signed for the round's request
  id and feed, with different (value, observed_at); in the set or evidence.
- ``stale``: an observation the key signed for this very round, made more
  than ``max_observation_age`` seconds before the newest observation of the
  consensus set (which honest nodes signed).
- ``out-of-band``: an observation the key signed for this round whose value
  lies more than ``observation_band_bps`` from the median of the set.

Pure: no chain, no clock, no I/O. Which keys belong to the DON is the
caller's to pin (``signers``); an evidence signature by any other key, or not
by the key the entry names, is an ``EvidenceProblem``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._consensus import median
from ._errors import VerifierError
from ._signing import SignedObservation, recover_observation_signer


class Logged(Protocol):
    """What the evidence checks read of an entry (a ``LogEntry`` or the audit's own row)."""

    @property
    def seq(self) -> int: ...
    @property
    def execution_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...


PROVABLE = ("equivocation", "stale", "out-of-band")


@dataclass(frozen=True)
class ProvenFault:
    """A node fault its own signatures prove, in one execution's round (``seq``: the entry)."""

    execution_id: str
    seq: int
    request_id: str
    address: str
    node: str
    cause: str
    detail: str
    signatures: tuple[str, ...]
    observations: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Claim:
    """What the coordinator says about a node it left out (down, slow...): not proof."""

    execution_id: str
    seq: int
    node: str
    address: str
    cause: str
    detail: str


@dataclass(frozen=True)
class EvidenceProblem:
    """Logged evidence that does not show what it claims (an operator's or a coordinator's lie)."""

    execution_id: str
    seq: int
    node: str
    problem: str


@dataclass
class EvidenceReport:
    """Everything the observations entries of a log say about faulty nodes."""

    faults: list[ProvenFault] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    problems: list[EvidenceProblem] = field(default_factory=list)

    def faulty_nodes(self, execution_id: str | None = None) -> dict[str, set[str]]:
        """Proven-faulty signer address -> causes (of one execution, or of all)."""
        found: dict[str, set[str]] = {}
        for fault in self.faults:
            if execution_id is None or fault.execution_id == execution_id:
                found.setdefault(fault.address, set()).add(fault.cause)
        return found


def proven_faults(
    entries: Iterable[Logged], signers: Collection[str] | None = None
) -> list[ProvenFault]:
    """The node faults the logged signatures prove (see ``examine_evidence``)."""
    return examine_evidence(entries, signers).faults


def examine_evidence(
    entries: Iterable[Logged], signers: Collection[str] | None = None
) -> EvidenceReport:
    """Check the evidence of every ``observations`` entry; never raises on any payload.

    Args:
        entries: log entries (any kinds, any executions; others are skipped).
        signers: the DON's signer addresses from a pinned source; None accepts
            any key (the caller then checks ``ProvenFault.address`` itself).
    """
    report = EvidenceReport()
    allowed = None if signers is None else {s.lower() for s in signers}
    for entry in entries:
        if entry.kind != "observations":
            continue
        try:
            _examine(entry, allowed, report)
        except (KeyError, TypeError, ValueError, AttributeError, VerifierError) as exc:
            report.problems.append(
                EvidenceProblem(entry.execution_id, entry.seq, "-", f"malformed evidence: {exc}")
            )
    return report


@dataclass
class _Signed:
    signed: SignedObservation
    address: str
    raw: dict[str, Any]
    in_set: bool


def _examine(entry: Logged, allowed: set[str] | None, report: EvidenceReport) -> None:
    p = entry.payload
    request_id, feed = str(p["request_id"]), str(p["feed"])
    don = p.get("don")
    rules: Mapping[str, Any] = don if isinstance(don, Mapping) else {}
    chosen = [_recover(raw, True) for raw in p["observations"]]
    for item in p.get("absent") or []:
        report.claims.append(
            Claim(
                entry.execution_id,
                entry.seq,
                str(item["node"]),
                str(item["address"]),
                str(item["cause"]),
                str(item.get("detail", "")),
            )
        )
    extra: list[tuple[Mapping[str, Any], _Signed]] = []
    for item in p.get("evidence") or []:
        for raw in item["observations"]:
            one = _recover(raw, False)
            problem = _attribution(item, one, allowed)
            if problem:
                report.problems.append(
                    EvidenceProblem(entry.execution_id, entry.seq, str(item["node"]), problem)
                )
            else:
                extra.append((item, one))
    this_round = [s for s in chosen + [e for _, e in extra] if _of_round(s, request_id, feed)]
    _equivocations(entry, this_round, extra, report)
    _rule_breaks(entry, chosen, extra, rules, request_id, feed, report)


def _recover(raw: Any, in_set: bool) -> _Signed:
    signed = SignedObservation.model_validate(raw)
    return _Signed(signed, recover_observation_signer(signed), dict(raw), in_set)


def _attribution(item: Mapping[str, Any], one: _Signed, allowed: set[str] | None) -> str | None:
    """Why an evidence observation is not attributable to the node the entry names, or None."""
    named = str(item["address"]).lower()
    if one.address.lower() != named:
        return f"evidence signed by {one.address}, not by the named {item['address']}"
    if one.signed.observation.node.lower() != named:
        return f"evidence observation names {one.signed.observation.node}, not {item['address']}"
    if allowed is not None and named not in allowed:
        return f"evidence names {item['address']}, not a signer of the pinned DON"
    return None


def _of_round(one: _Signed, request_id: str, feed: str) -> bool:
    obs = one.signed.observation
    return obs.request_id == request_id and obs.feed == feed


def _equivocations(
    entry: Logged,
    answers: list[_Signed],
    extra: list[tuple[Mapping[str, Any], _Signed]],
    report: EvidenceReport,
) -> None:
    """Two different signed answers of one key for this round: proven equivocation."""
    names = {one.address: str(item["node"]) for item, one in extra}
    by_key: dict[str, list[_Signed]] = {}
    for one in answers:
        by_key.setdefault(one.address, []).append(one)
    for address, said in by_key.items():
        distinct = {(s.signed.observation.value, s.signed.observation.observed_at): s for s in said}
        if len(distinct) < 2:
            continue
        proof = list(distinct.values())
        values = sorted(v for v, _ in distinct)
        report.faults.append(
            _fault(
                entry,
                address,
                names.get(address, address),
                "equivocation",
                proof,
                f"signed {len(proof)} different observations for one round: values {values}",
            )
        )


def _rule_breaks(
    entry: Logged,
    chosen: list[_Signed],
    extra: list[tuple[Mapping[str, Any], _Signed]],
    rules: Mapping[str, Any],
    request_id: str,
    feed: str,
    report: EvidenceReport,
) -> None:
    """Stale and out-of-band answers, judged against the consensus set and the logged rules."""
    if not chosen:
        return
    newest = max(s.signed.observation.observed_at for s in chosen)
    middle = median([s.signed.observation.value for s in chosen])
    max_age, band = rules.get("max_observation_age"), rules.get("observation_band_bps")
    for item, one in extra:
        claimed, obs = str(item["cause"]), one.signed.observation
        if claimed not in ("stale", "out-of-band"):
            continue
        node = str(item["node"])
        if not _of_round(one, request_id, feed):
            problem = (
                f"{claimed} evidence is an observation of round {obs.request_id}, not this one"
            )
            report.problems.append(EvidenceProblem(entry.execution_id, entry.seq, node, problem))
            continue
        if claimed == "stale" and isinstance(max_age, int):
            age = newest - obs.observed_at
            if age > max_age:
                detail = f"observed {age}s before the newest of the set, max age {max_age}s"
                report.faults.append(_fault(entry, one.address, node, "stale", [one], detail))
                continue
        if (
            claimed == "out-of-band"
            and isinstance(band, int)
            and abs(obs.value - middle) * 10_000 > band * abs(middle)
        ):
            detail = f"observed {obs.value}, more than {band} bps from the set's median {middle}"
            report.faults.append(_fault(entry, one.address, node, "out-of-band", [one], detail))
            continue
        problem = f"claimed {claimed}, but its signed observation does not show it"
        report.problems.append(EvidenceProblem(entry.execution_id, entry.seq, node, problem))


def _fault(
    entry: Logged, address: str, node: str, cause: str, proof: list[_Signed], detail: str
) -> ProvenFault:
    return ProvenFault(
        execution_id=entry.execution_id,
        seq=entry.seq,
        request_id=str(entry.payload["request_id"]),
        address=address,
        node=node,
        cause=cause,
        detail=detail,
        signatures=tuple("0x" + bytes(s.signed.signature).hex() for s in proof),
        observations=tuple(s.raw for s in proof),
    )


__all__ = [
    "PROVABLE",
    "Claim",
    "EvidenceProblem",
    "EvidenceReport",
    "ProvenFault",
    "examine_evidence",
    "proven_faults",
]
