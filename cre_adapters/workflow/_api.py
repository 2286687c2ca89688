"""The public workflow API: a workflow is a set of handlers, each a trigger joined to a callback.

Mirrors Chainlink CRE's SDK shape (``cre.handler(trigger, callback)``,
``HTTPClient.sendRequest`` with a consensus aggregation per field,
``EVMClient.callContract``, ``runtime.report``, ``writeReport``) in Python::

    from vouch.cre_adapters.workflow import Workflow, Runtime, cron, median

    workflow = Workflow("eth-feed")

    @workflow.handler(cron("*/30 * * * * *"))
    def on_tick(rt: Runtime, event: dict) -> None:
        quote = rt.http.fetch(
            "https://api.example/eth",
            parse=lambda r: {"price": int(r.json()["usd"] * 10**8)},
            aggregate={"price": median(tolerance_bps=50)},
        )
        report = rt.report(["uint256"], [quote["price"]])
        rt.evm.write(report, receiver=rt.config["receiver"], gas_limit=300_000)

A callback must be deterministic given its capability results: every node
runs it, and nodes whose calls or report differ are named (``Nondeterminism``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from vouch.verifier._aggregate import Aggregation

from ._cron import CronSchedule
from ._errors import WorkflowDefinitionError

if TYPE_CHECKING:
    from ._runtime import Runtime

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,10}$")
FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,23}$")


# --- aggregations (CRE: consensusMedianAggregation, identical, commonPrefix, ...) -------------
def median(*, tolerance_bps: int | None = None, tolerance: int | None = None) -> Aggregation:
    """The median of the nodes' integers; with a tolerance, 2f+1 must lie within it."""
    return Aggregation("median", tolerance_bps=tolerance_bps, tolerance=tolerance)


def identical() -> Aggregation:
    """One value from at least f+1 nodes (and no other value from f+1)."""
    return Aggregation("identical")


def mode() -> Aggregation:
    """The most frequent value, held by at least f+1 nodes."""
    return Aggregation("mode")


def common_prefix() -> Aggregation:
    """The longest prefix (string or list) that at least f+1 nodes' values share."""
    return Aggregation("common_prefix")


def common_suffix() -> Aggregation:
    """The longest suffix (string or list) that at least f+1 nodes' values share."""
    return Aggregation("common_suffix")


# --- triggers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CronTrigger:
    """Fires on a cron schedule: 5 fields (minute precision) or 6 (seconds first)."""

    schedule: str
    kind: Literal["cron"] = "cron"

    def __post_init__(self) -> None:
        CronSchedule.parse(self.schedule)  # refuse a bad expression when the module loads

    def to_json(self) -> dict[str, Any]:
        """The trigger as logged."""
        return {"kind": self.kind, "schedule": self.schedule}


@dataclass(frozen=True)
class IntervalTrigger:
    """Fires every ``seconds`` seconds."""

    seconds: float
    kind: Literal["interval"] = "interval"

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise WorkflowDefinitionError(f"interval seconds must be > 0, not {self.seconds}")

    def to_json(self) -> dict[str, Any]:
        """The trigger as logged."""
        return {"kind": self.kind, "seconds": self.seconds}


@dataclass(frozen=True)
class HttpTrigger:
    """Fires on an authorised ``POST /trigger``: a bearer token, or an HMAC-SHA256 signed body.

    ``auth="bearer"``: ``Authorization: Bearer <token>``; ``auth="signed"``:
    ``X-Vouch-Signature: hex(HMAC-SHA256(key, timestamp + "." + body))`` and
    ``X-Vouch-Timestamp`` within 300 s. The token/key is the secret ``secret``.
    """

    auth: Literal["bearer", "signed"] = "bearer"
    secret: str = "HTTP_TRIGGER_KEY"
    kind: Literal["http"] = "http"

    def to_json(self) -> dict[str, Any]:
        """The trigger as logged (the secret by name only)."""
        return {"kind": self.kind, "auth": self.auth, "secret": self.secret}


@dataclass(frozen=True)
class EvmLogTrigger:
    """Fires once per event log of ``address`` (``topics``), ``confirmations`` blocks deep."""

    address: str
    topics: tuple[str | None, ...] = ()
    confirmations: int = 1
    kind: Literal["evm-log"] = "evm-log"

    def __post_init__(self) -> None:
        if self.confirmations < 0:
            raise WorkflowDefinitionError("confirmations must be >= 0")

    def to_json(self) -> dict[str, Any]:
        """The trigger as logged."""
        return {
            "kind": self.kind,
            "address": self.address,
            "topics": list(self.topics),
            "confirmations": self.confirmations,
        }


Trigger = CronTrigger | IntervalTrigger | HttpTrigger | EvmLogTrigger


def cron(schedule: str) -> CronTrigger:
    """A cron trigger (``"*/5 * * * *"`` or, seconds first, ``"*/30 * * * * *"``)."""
    return CronTrigger(schedule)


def interval(seconds: float) -> IntervalTrigger:
    """A trigger firing every ``seconds`` seconds."""
    return IntervalTrigger(seconds)


def http_trigger(
    auth: Literal["bearer", "signed"] = "bearer", secret: str = "HTTP_TRIGGER_KEY"
) -> HttpTrigger:
    """An HTTP trigger authenticated by a bearer token or a signed request."""
    return HttpTrigger(auth, secret)


def evm_log(address: str, *topics: str | None, confirmations: int = 1) -> EvmLogTrigger:
    """An EVM log trigger: each log of ``address`` matching ``topics``, once it is that deep."""
    return EvmLogTrigger(address, tuple(topics), confirmations)


# --- handlers and workflows -----------------------------------------------------------------
Callback = Callable[["Runtime", dict[str, Any]], Any]


@dataclass(frozen=True)
class Handler:
    """A trigger and the callback it runs (CRE's ``cre.handler(trigger, callback)``)."""

    name: str
    trigger: Trigger
    callback: Callback


@dataclass
class Workflow:
    """A named set of handlers; a workflow module exposes one as ``workflow``.

    ``name`` (at most 10 ASCII letters, digits, ``._-``) travels in every
    report's metadata; the workflow id is derived from it and the owner.
    """

    name: str
    handlers: list[Handler] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise WorkflowDefinitionError(
                f"workflow name {self.name!r}: 1-10 characters of A-Z a-z 0-9 . _ - "
                "(it travels in the report metadata)"
            )

    def handler(self, trigger: Trigger, name: str | None = None) -> Callable[[Callback], Callback]:
        """Decorator: run the decorated callback when ``trigger`` fires."""

        def register(callback: Callback) -> Callback:
            self.add(trigger, callback, name or str(getattr(callback, "__name__", "handler")))
            return callback

        return register

    def add(self, trigger: Trigger, callback: Callback, name: str) -> Handler:
        """Register ``callback`` for ``trigger`` under ``name`` (unique in the workflow)."""
        if any(h.name == name for h in self.handlers):
            raise WorkflowDefinitionError(f"workflow {self.name}: two handlers named {name!r}")
        made = Handler(name, trigger, callback)
        self.handlers.append(made)
        return made

    def get(self, name: str | None) -> Handler:
        """The handler ``name`` (None: the only one)."""
        if name is None:
            if len(self.handlers) != 1:
                names = ", ".join(h.name for h in self.handlers) or "none"
                raise WorkflowDefinitionError(
                    f"workflow {self.name} has {len(self.handlers)} handlers ({names}): name one"
                )
            return self.handlers[0]
        for h in self.handlers:
            if h.name == name:
                return h
        raise WorkflowDefinitionError(f"workflow {self.name} has no handler {name!r}")


def handler(trigger: Trigger, callback: Callback, name: str | None = None) -> Handler:
    """CRE's ``cre.handler(trigger, callback)``: for ``Workflow(name, [handler(...), ...])``."""
    return Handler(name or str(getattr(callback, "__name__", "handler")), trigger, callback)


def check_field_name(name: str) -> None:
    """A result field's name fits the signed observation's feed (``<step>:<field>``)."""
    if not FIELD.match(name):
        raise WorkflowDefinitionError(
            f"result field {name!r}: 1-24 characters, a letter or _ first, then letters, "
            "digits or _"
        )


__all__ = [
    "Aggregation",
    "CronTrigger",
    "EvmLogTrigger",
    "Handler",
    "HttpTrigger",
    "IntervalTrigger",
    "Trigger",
    "Workflow",
    "common_prefix",
    "common_suffix",
    "cron",
    "evm_log",
    "handler",
    "http_trigger",
    "identical",
    "interval",
    "median",
    "mode",
]
