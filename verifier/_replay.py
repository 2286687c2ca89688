"""Replay: recompute one execution's decision from its logged inputs and compare."""

from __future__ import annotations

from pydantic import BaseModel

from ._consensus import median, recompute, report_verdict
from ._errors import ConsensusError, EncodingError, SignatureError, VerifierError
from ._log import LogEntry
from ._signing import SignedObservation, recover_observation_signer
from ._store import LogStore
from .audit._read import _ReportFields
from .audit._report_checks import _outcome_problems


class NodeAnswer(BaseModel):
    """What one node observed, and how far it was from the outcome."""

    node: str
    value: int
    signature_ok: bool
    deviation_bps: int
    feed: str = ""


class ReplayedOutcome(BaseModel):
    """One consensus of the execution (one per feed), recomputed by its logged mode and f."""

    feed: str
    mode: str
    f: int
    logged_value: int | None
    recomputed_value: int | None
    observations_seq: int


class ReplayResult(BaseModel):
    """The recomputed decision next to the logged one."""

    execution_id: str
    mode: str
    logged_value: int | None
    recomputed_value: int
    reported_value: int | None
    answers: list[NodeAnswer]
    divergences: list[str]
    outcomes: list[ReplayedOutcome] = []

    @property
    def matches(self) -> bool:
        """True when the recomputation agrees with everything logged."""
        return not self.divergences


def find_execution(log: LogStore, prefix: str) -> str:
    """The full execution id starting with ``prefix``.

    Raises:
        VerifierError: if no execution, or more than one, matches.
    """
    wanted = prefix.lower() if prefix.startswith("0x") else "0x" + prefix.lower()
    found = sorted({e.execution_id for e in log.entries() if e.execution_id.startswith(wanted)})
    if len(found) != 1:
        raise VerifierError(
            f"{len(found)} executions match {prefix!r}; give more of the id (see `vouch audit`)"
        )
    return found[0]


def replay(log: LogStore, execution_id: str) -> ReplayResult:
    """Recompute every consensus of ``execution_id`` from its signed observations.

    Each consensus entry is recomputed by its own logged mode (median, identical,
    mode) and f over the observations entry it names; the report is compared
    with the outcome (a settlement's price, a feeds report field by field, a
    message report by its hash). An execution logged without a consensus entry
    is recomputed as a median.

    Raises:
        VerifierError: if the execution has no observations in the log.
    """
    entries = log.by_execution(execution_id)
    observations = {e.seq: e for e in entries if e.kind == "observations"}
    if not observations:
        raise VerifierError(f"execution {execution_id} has no observations in the log")
    agreed = [e for e in entries if e.kind in ("consensus", "skipped")]
    divergences: list[str] = []
    outcomes = [_replay_one(e, observations, divergences) for e in agreed]
    if not outcomes:  # an execution cut short before its consensus entry
        seq = min(observations)
        values = [s.observation.value for s in _signed(observations[seq])]
        outcomes = [
            ReplayedOutcome(
                feed="",
                mode="median",
                f=0,
                logged_value=None,
                recomputed_value=median(values),
                observations_seq=seq,
            )
        ]
    answers = [a for o in outcomes for a in _answers(observations[o.observations_seq], o)]
    divergences[:0] = [
        f"observation from {a.node} does not carry its signature"
        for a in answers
        if not a.signature_ok
    ]
    report = next((e for e in reversed(entries) if e.kind == "report"), None)
    reported = _check_report(report, entries, agreed, outcomes, divergences)
    first = outcomes[0]
    return ReplayResult(
        execution_id=execution_id,
        mode=first.mode,
        logged_value=first.logged_value,
        recomputed_value=first.recomputed_value if first.recomputed_value is not None else 0,
        reported_value=reported,
        answers=answers,
        divergences=divergences,
        outcomes=outcomes,
    )


def _signed(entry: LogEntry) -> list[SignedObservation]:
    return [SignedObservation.model_validate(o) for o in entry.payload["observations"]]


def _replay_one(
    consensus: LogEntry, observations: dict[int, LogEntry], divergences: list[str]
) -> ReplayedOutcome:
    p = consensus.payload
    seq, mode, f = int(p.get("observations_seq", 0)), str(p.get("mode")), int(p.get("f", 0))
    feed = str(p.get("feed") or "")
    name = f"{mode} of {feed}" if feed else mode
    logged = int(p["value"]) if isinstance(p.get("value"), int) else None
    if seq not in observations:
        divergences.append(
            f"entry #{consensus.seq} names observations #{seq}, not this execution's"
        )
        return ReplayedOutcome(
            feed=feed,
            mode=mode,
            f=f,
            logged_value=logged,
            recomputed_value=None,
            observations_seq=min(observations),
        )
    try:
        value = recompute(mode, [s.observation.value for s in _signed(observations[seq])], f)
    except ConsensusError as exc:
        divergences.append(f"{name} (entry #{consensus.seq}) does not recompute: {exc}")
        value = None
    if value is not None and value != logged:
        divergences.append(
            f"logged consensus {logged} != recomputed {mode} {value}"
            + (f" for {feed}" if feed else "")
        )
    if isinstance(p.get("rule"), dict) and logged is not None:
        _replay_rule(consensus, logged, divergences)
    return ReplayedOutcome(
        feed=feed, mode=mode, f=f, logged_value=logged, recomputed_value=value, observations_seq=seq
    )


def _replay_rule(consensus: LogEntry, value: int, divergences: list[str]) -> None:
    """A feed round's report-or-skip verdict, recomputed from its logged rule."""
    p, rule = consensus.payload, consensus.payload["rule"]
    try:
        previous = rule["previous"]
        last = (int(previous["value"]), int(previous["at"])) if previous else None
        verdict = report_verdict(
            int(rule["deviation_bps"]), int(rule["heartbeat"]), last, value, int(rule["at"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        divergences.append(f"entry #{consensus.seq}'s rule is unreadable: {type(exc).__name__}")
        return
    if verdict != p.get("why") or consensus.kind != ("consensus" if verdict else "skipped"):
        divergences.append(
            f"the rule of {p.get('feed')} says {verdict or 'skip'!r}, "
            f"entry #{consensus.seq} says {consensus.kind} {p.get('why')!r}"
        )


def _answers(entry: LogEntry, outcome: ReplayedOutcome) -> list[NodeAnswer]:
    decided = outcome.recomputed_value or 0
    return [
        NodeAnswer(
            node=s.observation.node,
            value=s.observation.value,
            signature_ok=_signed_by_node(s),
            deviation_bps=(s.observation.value - decided) * 10_000 // decided if decided else 0,
            feed=outcome.feed,
        )
        for s in _signed(entry)
    ]


def _signed_by_node(signed: SignedObservation) -> bool:
    try:
        return recover_observation_signer(signed) == signed.observation.node
    except SignatureError:
        return False


def _check_report(
    report: LogEntry | None,
    entries: list[LogEntry],
    agreed: list[LogEntry],
    outcomes: list[ReplayedOutcome],
    divergences: list[str],
) -> int | None:
    """The reported settlement price (None for other reports); report mismatches go to divergences."""
    if report is None:
        return None
    try:
        fields = _ReportFields.parse(bytes.fromhex(str(report.payload["raw"])[2:]))
    except (EncodingError, KeyError, ValueError) as exc:
        divergences.append(f"the logged report #{report.seq} is unreadable: {exc}")
        return None
    settlement = any(e.kind == "proposal" for e in entries) or len(fields.payload) == 64
    if not settlement:
        consensus = [e for e in agreed if e.kind == "consensus"]
        divergences += _outcome_problems(fields, report.execution_id, consensus)
        return None
    price = int.from_bytes(fields.payload[32:64], "big")
    recomputed = outcomes[0].recomputed_value
    if price != recomputed:
        divergences.append(f"reported price {price} != recomputed {outcomes[0].mode} {recomputed}")
    return price
