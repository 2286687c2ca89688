"""Replay: recompute one execution's decision from its logged inputs and compare."""

from __future__ import annotations

from pydantic import BaseModel

from ._consensus import median
from ._errors import SignatureError, VerifierError
from ._log import AttestationLog, LogEntry
from ._report import SettlementPayload, decode_report
from ._signing import SignedObservation, recover_observation_signer


class NodeAnswer(BaseModel):
    """What one node observed, and how far it was from the outcome."""

    node: str
    value: int
    signature_ok: bool
    deviation_bps: int


class ReplayResult(BaseModel):
    """The recomputed decision next to the logged one."""

    execution_id: str
    mode: str
    logged_value: int | None
    recomputed_value: int
    reported_value: int | None
    answers: list[NodeAnswer]
    divergences: list[str]

    @property
    def matches(self) -> bool:
        """True when the recomputation agrees with everything logged."""
        return not self.divergences


def find_execution(log: AttestationLog, prefix: str) -> str:
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


def replay(log: AttestationLog, execution_id: str) -> ReplayResult:
    """Recompute the consensus of ``execution_id`` from its signed observations.

    Raises:
        VerifierError: if the execution has no observations in the log.
    """
    entries = {e.kind: e for e in log.by_execution(execution_id)}
    if "observations" not in entries:
        raise VerifierError(f"execution {execution_id} has no observations in the log")
    signed = [
        SignedObservation.model_validate(o) for o in entries["observations"].payload["observations"]
    ]
    recomputed = median([s.observation.value for s in signed])
    consensus = entries.get("consensus")
    logged = int(consensus.payload["value"]) if consensus else None
    reported = _reported(entries.get("report"))
    divergences = [
        f"observation from {a.node} does not carry its signature"
        for a in _answers(signed, recomputed)
        if not a.signature_ok
    ]
    if logged is not None and logged != recomputed:
        divergences.append(f"logged consensus {logged} != recomputed median {recomputed}")
    if reported is not None and reported != recomputed:
        divergences.append(f"reported price {reported} != recomputed median {recomputed}")
    return ReplayResult(
        execution_id=execution_id,
        mode=consensus.payload.get("mode", "median") if consensus else "median",
        logged_value=logged,
        recomputed_value=recomputed,
        reported_value=reported,
        answers=_answers(signed, recomputed),
        divergences=divergences,
    )


def _answers(signed: list[SignedObservation], outcome: int) -> list[NodeAnswer]:
    return [
        NodeAnswer(
            node=s.observation.node,
            value=s.observation.value,
            signature_ok=_signed_by_node(s),
            deviation_bps=(s.observation.value - outcome) * 10_000 // outcome if outcome else 0,
        )
        for s in signed
    ]


def _signed_by_node(signed: SignedObservation) -> bool:
    try:
        return recover_observation_signer(signed) == signed.observation.node
    except SignatureError:
        return False


def _reported(report: LogEntry | None) -> int | None:
    if report is None:
        return None
    _, body = decode_report(bytes.fromhex(report.payload["raw"][2:]))
    return SettlementPayload.decode(body.payload).price
