"""Completeness: the sequence of entries each kind of execution must log, as data.

An execution's entries, in log order, are walked through a small state
machine: ``GRAMMARS[kind][state][entry kind] -> next state``. An entry kind
a state does not list is out of order (or extra); an execution that ends in a
state not in ``ACCEPT[kind]`` is missing its next entry. Adding an entry kind
is one line per state it may follow (and the state it leads to).

Kinds of execution (``classify``):

- ``settlement``: ``proposal``, then ``hitl`` decisions (one is required when
  the gate asked for approval of the trade; checked against the chain), then
  a DON round: ``observations``, ``consensus``, ``report``, ``submission``.
  A round cut short ends in ``aborted`` (at any point after the proposal), and
  a ``retry`` entry starts the next round. A rejected submission (no
  transaction) is followed by ``aborted``. A ``proposal`` whose last decision
  is a rejection may end there. A ``refund`` (the trade refunded after its
  deadline) may end a settlement that did not settle: after a rejection, an
  ``aborted`` round or a refused submission.
- ``feeds``: one or more (``observations``, ``consensus`` | ``skipped``)
  pairs, then ``report`` and ``submission`` when any feed reported; a round
  where every feed skipped ends after its last pair.
- ``log-only`` (a feeds round with no chain target): as ``feeds``, ending
  after its ``report``. (A report that was delivered anyway has a
  ``ReportProcessed`` event, which the chain-to-log check alarms on.)
- ``workflow`` (workflows as code): ``trigger``, a ``capability`` per call,
  then ``report`` (and ``submission`` when it was sent) or ``finished`` (the
  callback wrote nothing); ``aborted`` ends it early.
- ``message`` (cross-chain): ``observations`` (naming the source event's
  ``ref``), ``consensus``, ``report``, ``submission``; or ``aborted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

START = "start"

# state -> entry kind -> next state, per kind of execution
_ROUND: dict[str, dict[str, str]] = {
    "observed": {"consensus": "agreed", "aborted": "aborted", "retry": "proposed"},
    "agreed": {"report": "reported", "aborted": "aborted", "retry": "proposed"},
    "reported": {"submission": "submitted", "aborted": "aborted", "retry": "proposed"},
    "submitted": {"aborted": "aborted", "retry": "proposed", "refund": "refunded"},
    "aborted": {"retry": "proposed", "hitl": "aborted", "refund": "refunded"},
    "refunded": {},
}
GRAMMARS: dict[str, dict[str, dict[str, str]]] = {
    "settlement": {
        START: {"proposal": "proposed"},
        "proposed": {
            "hitl": "proposed",
            "observations": "observed",
            "aborted": "aborted",
            "retry": "proposed",
            "refund": "refunded",
        },
        **_ROUND,
    },
    "feeds": {
        START: {"observations": "observed"},
        "observed": {"consensus": "agreed", "skipped": "agreed", "aborted": "aborted"},
        "agreed": {"observations": "observed", "report": "reported", "aborted": "aborted"},
        "reported": {"submission": "submitted", "aborted": "aborted"},
        "submitted": {"aborted": "aborted"},
        "aborted": {},
    },
    "message": {
        START: {"observations": "observed", "aborted": "aborted"},
        "observed": {"consensus": "agreed", "aborted": "aborted"},
        "agreed": {"report": "reported", "aborted": "aborted"},
        "reported": {"submission": "submitted", "aborted": "aborted"},
        "submitted": {"aborted": "aborted"},
        "aborted": {},
    },
}
GRAMMARS["workflow"] = {
    START: {"trigger": "triggered"},
    "triggered": {
        "capability": "triggered",
        "report": "reported",
        "finished": "finished",
        "aborted": "aborted",
    },
    "reported": {"submission": "submitted", "aborted": "aborted"},
    "submitted": {"aborted": "aborted"},
    "finished": {},
    "aborted": {},
}
GRAMMARS["log-only"] = GRAMMARS["feeds"]
# where an execution may end; "proposed" only after a rejection (see ``check_sequence``)
ACCEPT: dict[str, frozenset[str]] = {
    "settlement": frozenset({"submitted", "aborted", "proposed", "refunded"}),
    "feeds": frozenset({"submitted", "aborted", "agreed"}),
    "log-only": frozenset({"reported", "aborted", "agreed"}),
    "message": frozenset({"submitted", "aborted"}),
    "workflow": frozenset({"reported", "submitted", "finished", "aborted"}),
}
# what an execution stuck in a state is missing next
_NEXT = {
    START: "its first entry",
    "proposed": "observations (or a rejecting hitl decision)",
    "observed": "consensus",
    "triggered": "a capability, report, finished or aborted entry",
    "agreed": "report",
    "reported": "submission (or aborted)",
}


class _Logged(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...


def classify(entries: Sequence[_Logged]) -> str:
    """The kind of execution ``entries`` (in log order) belong to."""
    first = entries[0]
    if first.kind == "trigger":
        return "workflow"
    if any(e.kind == "proposal" for e in entries) or first.kind in ("hitl", "retry"):
        return "settlement"
    if first.kind == "observations" and "ref" in first.payload:
        return "message"
    if any(e.kind == "report" for e in entries) and not any(
        e.kind == "submission" for e in entries
    ):
        return "log-only"
    return "feeds"


def check_sequence(
    entries: Sequence[_Logged], approval_required: bool | None = None
) -> tuple[str, list[tuple[int, str]]]:
    """(kind of execution, [(seq, problem)]) for one execution's entries in log order.

    ``approval_required``: the gate asked for approval of the trade (None:
    unknown, no chain). Then an approving ``hitl`` must precede the round's
    ``observations``.
    """
    kind = classify(entries)
    grammar, state = GRAMMARS[kind], START
    problems: list[tuple[int, str]] = []
    approved = False
    for position, entry in enumerate(entries, 1):
        allowed = grammar.get(state, {})
        nxt = allowed.get(entry.kind)
        if nxt is None:
            expected = ", ".join(sorted(allowed)) or "nothing more"
            problems.append(
                (
                    entry.seq,
                    f"{kind} execution: entry {position} is {entry.kind!r} after {state!r}; "
                    f"expected {expected} (missing, extra or out of order)",
                )
            )
            return kind, problems
        if entry.kind == "hitl":
            approved = entry.payload.get("decision") == "approved"
        if (
            entry.kind == "observations"
            and kind == "settlement"
            and approval_required
            and not approved
        ):
            problems.append(
                (
                    entry.seq,
                    f"settlement execution: entry {position} starts a DON round, but the gate "
                    "required approval of this trade and no approving hitl entry precedes it",
                )
            )
        state = nxt
    last = entries[-1]
    ends_ok = state in ACCEPT[kind]
    if kind == "settlement" and state == "proposed":
        ends_ok = last.kind == "hitl" and last.payload.get("decision") == "rejected"
    if not ends_ok:
        missing = _NEXT.get(state, "an ending entry")
        problems.append(
            (
                last.seq,
                f"{kind} execution ends after entry {len(entries)} ({last.kind!r}): missing "
                f"{missing} (deleted, or still running)",
            )
        )
    return kind, problems
