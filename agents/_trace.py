"""Tracing: every step, model call, tool call, handoff and decision of a run is a span.

Attribute names follow the OpenTelemetry semantic conventions for generative AI
(``gen_ai.*``) where one exists, and ``vouch.*`` otherwise, so spans export to
any OTel backend as they are (``Span.to_otel()``). No OpenTelemetry package is
needed.

The trace hash binds the reasoning into the proposal. ``trace_hash(spans)`` is
SHA-256 over the spans' canonical content (names, ids, parents, attributes,
statuses; not their timings), independent of their order. The rule:

- A run's trace is its spans in the order they closed (``Tracer.spans``); the
  executor saves it with the checkpoint (``CheckpointStore.load_trace``) and
  ``RunOutcome.trace_hash`` is ``trace_hash`` of the whole saved trace.
- While a run executes (the executor, a swarm, or a lone ``Agent`` loop while
  its tool runs), ``current_trace_hash()`` is ``trace_hash`` of every span closed
  up to that moment: a prefix of the trace that will be saved.
- ``ActionProposal`` takes ``current_trace_hash()`` when it is built without a
  trace hash, so a proposal carries the hash of exactly the spans that led to it.
- An auditor recomputes it from the recorded trace: ``trace_prefix(trace,
  proposal.trace_hash)`` is how many leading spans hash to it (None: none do).
  When steps run concurrently, which of the other steps' spans had closed is
  part of what it binds; the recorded order says which.

Inside an engine run, an ``Agent`` loop's model and tool calls are spans of the
run's trace, so the run's binding wins over the loop's own (a *weak* binding).
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar("vouch_span", default=None)
_sink: contextvars.ContextVar[list[Span] | None] = contextvars.ContextVar(
    "vouch_sink", default=None
)
_hash_source: contextvars.ContextVar[Callable[[], str] | None] = contextvars.ContextVar(
    "vouch_trace_hash", default=None
)

# attribute names (OpenTelemetry gen_ai semantic conventions, then ours)
OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
RUN_ID = "vouch.run.id"
STEP_ID = "vouch.step.id"
ATTEMPT = "vouch.step.attempt"
DECISION = "vouch.decision"
APPROVER = "vouch.hitl.approver"
DECIDED_AT = "vouch.hitl.decided_at"
ACTION_KEY = "vouch.hitl.key"
RESUMED = "vouch.step.resumed"
HANDOFF_TO = "vouch.handoff.to"
HANDOFF_FROM = "vouch.handoff.from"
HANDOFF_DEPTH = "vouch.handoff.depth"
OUTPUT_HASH = "vouch.output.hash"


@dataclass(slots=True)
class Span:
    """One unit of work in a run's trace (OTel-shaped: ids, parent, times in ns, status)."""

    name: str
    span_id: str
    parent_id: str | None
    trace_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0
    status: str = "UNSET"  # OK | ERROR | UNSET, as OTel
    status_message: str = ""

    def set(self, key: str, value: Any) -> None:
        """Set one attribute."""
        self.attributes[key] = value

    def to_otel(self) -> dict[str, Any]:
        """The span as an OTLP-like JSON object."""
        return {
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "parentSpanId": self.parent_id or "",
            "name": self.name,
            "startTimeUnixNano": self.start_ns,
            "endTimeUnixNano": self.end_ns,
            "attributes": self.attributes,
            "status": {"code": self.status, "message": self.status_message},
        }

    @classmethod
    def from_otel(cls, data: dict[str, Any]) -> Span:
        """Inverse of ``to_otel``."""
        return cls(
            name=data["name"],
            span_id=data["spanId"],
            parent_id=data["parentSpanId"] or None,
            trace_id=data["traceId"],
            attributes=dict(data["attributes"]),
            start_ns=data["startTimeUnixNano"],
            end_ns=data["endTimeUnixNano"],
            status=data["status"]["code"],
            status_message=data["status"]["message"],
        )

    def canonical(self) -> str:
        """The span's content as canonical JSON: what the trace hash binds (no timings)."""
        content = {
            "name": self.name,
            "id": self.span_id,
            "parent": self.parent_id,
            "attributes": self.attributes,
            "status": self.status,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)


def _spans(spans: Iterable[Span | dict[str, Any]]) -> Iterator[Span]:
    return (s if isinstance(s, Span) else Span.from_otel(s) for s in spans)


def _digest(ordered: list[str]) -> str:
    return "0x" + hashlib.sha256("\n".join(ordered).encode()).hexdigest()


def trace_hash(spans: Iterable[Span | dict[str, Any]]) -> str:
    """SHA-256 over the spans' canonical content, order-free (spans or their ``to_otel`` form)."""
    return _digest(sorted(s.canonical() for s in _spans(spans)))


def trace_prefix(spans: Iterable[Span | dict[str, Any]], expected: str) -> int | None:
    """How many leading spans of a recorded trace hash to ``expected`` (None: no prefix does).

    An auditor's check of a proposal: ``trace_prefix(store.load_trace(run_id),
    proposal.trace_hash)`` names the spans that led to the proposal. It hashes
    every prefix: quadratic in the trace's length, fine for thousands of spans.
    """
    ordered: list[str] = []  # kept sorted, as trace_hash sorts
    if _digest(ordered) == expected:
        return 0
    for n, span in enumerate(_spans(spans), 1):
        bisect.insort(ordered, span.canonical())
        if _digest(ordered) == expected:
            return n
    return None


def current_trace_hash() -> str | None:
    """The hash of the running trace so far: every span closed up to now (None outside a run).

    Set by the executor and the swarm for their whole run, and by an ``Agent``
    loop while one of its tools runs (unless an engine run is already bound).
    """
    source = _hash_source.get()
    return source() if source is not None else None


@contextmanager
def bind_trace(source: Callable[[], str], *, weak: bool = False) -> Iterator[None]:
    """Make ``source`` what ``current_trace_hash()`` calls within the block (and its tasks).

    Args:
        source: gives the hash of the trace so far.
        weak: keep an enclosing binding instead, if there is one (an Agent loop inside a run).
    """
    if weak and _hash_source.get() is not None:
        yield
        return
    token = _hash_source.set(source)
    try:
        yield
    finally:
        _hash_source.reset(token)


class Tracer:
    """Collects the spans of one run.

    Span ids are derived, not random: ``sha256(parent id, name, key)`` where the
    key is what makes the span unique among its siblings (step id and attempt,
    call number...), so the same reasoning gives the same trace hash. A span
    opened without a key is numbered among its siblings of the same name (the
    n-th ``chat`` call of a step), so concurrent steps do not change each
    other's ids; spans restored with ``extend`` count as siblings too.

    Args:
        trace_id: the run id, usually.
    """

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.spans: list[Span] = []
        self._siblings: dict[tuple[str | None, str], int] = {}

    def _span_id(self, parent: str | None, name: str, key: str) -> str:
        if not key:
            n = self._siblings.get((parent, name), 0) + 1
            self._siblings[parent, name] = n
            key = f"#{n}"
        raw = f"{self.trace_id}|{parent}|{name}|{key}".encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    @contextmanager
    def span(self, name: str, key: str = "", **attributes: Any) -> Iterator[Span]:
        """A span around a block; nested spans (also across awaits) get it as their parent."""
        parent = _current.get()
        parent_id = parent.span_id if parent is not None else None
        span = Span(name, self._span_id(parent_id, name, key), parent_id, self.trace_id)
        span.attributes.update(attributes)
        span.start_ns = time.time_ns()
        token = _current.set(span)
        try:
            yield span
        except BaseException as exc:
            span.status, span.status_message = "ERROR", f"{type(exc).__name__}: {exc}"
            raise
        else:
            if span.status == "UNSET":
                span.status = "OK"
        finally:
            span.end_ns = time.time_ns()
            _current.reset(token)
            self.spans.append(span)
            sink = _sink.get()
            if sink is not None:
                sink.append(span)

    def event(self, name: str, key: str = "", **attributes: Any) -> Span:
        """A zero-length span (a decision, a handoff)."""
        with self.span(name, key, **attributes) as span:
            return span

    def extend(self, spans: list[dict[str, Any]]) -> None:
        """Add spans saved earlier (``to_otel`` form), e.g. from a checkpoint."""
        for data in spans:
            span = Span.from_otel(data)
            sibling = (span.parent_id, span.name)
            self._siblings[sibling] = self._siblings.get(sibling, 0) + 1
            self.spans.append(span)

    def trace_hash(self) -> str:
        """``trace_hash`` of every span closed so far."""
        return trace_hash(self.spans)

    def bind(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, ``current_trace_hash()`` is this tracer's hash so far."""
        return bind_trace(self.trace_hash)


def handoff_span(tracer: Tracer, source: str, target: str, depth: int, **attributes: Any) -> Span:
    """The span of one handoff (a swarm's or an agent's): who, to whom, how deep the chain is."""
    attrs: dict[str, Any] = {
        AGENT_NAME: source,
        HANDOFF_FROM: source,
        HANDOFF_TO: target,
        HANDOFF_DEPTH: depth,
        **attributes,
    }
    return tracer.event("handoff", "", **attrs)


def collect_spans() -> list[Span]:
    """From now on in this task, also collect every finished span into the returned list."""
    sink: list[Span] = []
    _sink.set(sink)
    return sink


def current_span() -> Span | None:
    """The span the calling code runs in, if any."""
    return _current.get()
