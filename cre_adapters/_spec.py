"""A workflow spec in the shape of a CRE workflow: trigger -> capabilities -> consensus -> target.

Legacy: the vouch CLI refuses spec files (workflow modules replace them,
docs/workflows.md "Spec files (replaced)"); the library keeps the model so
``FeedWorkflow`` can still write, and tests can reproduce, the feed logs the
audit checks. ``HttpTrigger`` also configures a module's http trigger server.

Loadable from TOML (stdlib ``tomllib``), JSON, or YAML (PyYAML)::

    name = "eth-feed"
    [trigger]
    kind = "interval"        # or "evm-log" (address, topic), "proposal" (goal), "http" (POST /trigger)
    every = 5
    runs = 3
    [[capabilities]]
    feed = "ETH/USD"
    [consensus]
    mode = "median"
    deviation_bps = 50
    heartbeat = 3600
    deadline = 5.0           # seconds each node has to answer (default: the caller's)
    [target]
    kind = "log"             # or "feeds": FeedConsumer.onReport, "settlement": SettlementGate.onReport
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._errors import ConfigError
from ._protocol import FEED


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IntervalTrigger(_Strict):
    """Run every ``every`` seconds, ``runs`` times."""

    kind: Literal["interval"]
    every: float = Field(default=10.0, gt=0)
    runs: int = Field(default=1, ge=1)


class EvmLogTrigger(_Strict):
    """Run once per event log ``address`` emits (matching ``topic`` if given), ``runs`` times.

    ``rpc_url`` None means the DON's own chain.
    """

    kind: Literal["evm-log"]
    address: str
    topic: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{64}$")
    rpc_url: str | None = None
    runs: int = Field(default=1, ge=1)
    poll: float = Field(default=0.5, gt=0)
    timeout: float = Field(default=120.0, gt=0, description="give up waiting for an event")


class ProposalTrigger(_Strict):
    """An agent's proposal: the goal it is given (the settlement demo)."""

    kind: Literal["proposal"]
    goal: str = Field(min_length=1)


class HttpTrigger(_Strict):
    """One execution per ``POST /trigger`` on ``host:port``, ``runs`` times (then the server stops).

    Served to loopback clients only, with ``Authorization: Bearer <token>`` read from
    ``token_file`` (None: ``HOME/workflow.token``, created 0600 on first use), like a node's
    ``/admin``. ``port`` 0 takes a free port; the URL is printed when the server listens.
    """

    kind: Literal["http"]
    host: str = "127.0.0.1"
    port: int = Field(default=8790, ge=0, le=65535)
    runs: int = Field(default=1, ge=1)
    token_file: Path | None = None

    @model_validator(mode="after")
    def _loopback(self) -> Self:
        try:
            loopback = self.host == "localhost" or ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"the http trigger serves loopback only (127.0.0.1, ::1, localhost), not {self.host}"
            )
        return self


Trigger = Annotated[
    IntervalTrigger | EvmLogTrigger | ProposalTrigger | HttpTrigger, Field(discriminator="kind")
]


class Capability(_Strict):
    """One fact every node observes with its own source, and its own consensus mode.

    ``mode`` None uses the workflow's ``consensus.mode``; several capabilities
    with their own modes make a per-field outcome (one field per feed).
    """

    feed: str = Field(pattern=FEED)
    mode: Literal["median", "identical", "mode"] | None = None


class ConsensusSpec(_Strict):
    """How observations become one value, and when it is worth reporting."""

    mode: Literal["median", "identical", "mode"] = "median"
    deviation_bps: int | None = Field(default=None, ge=0)
    heartbeat: int | None = Field(default=None, ge=1)
    deadline: float | None = Field(
        default=None,
        gt=0,
        le=120,
        description="seconds each node has to answer a stage; None: the runner's (node_timeout)",
    )


TARGETS: dict[str, tuple[str, str]] = {
    "settlement": ("SettlementGate", "onReport"),
    "feeds": ("FeedConsumer", "onReport"),
}


class TargetSpec(_Strict):
    """Where the outcome goes: the attestation log only, or a receiver through the Forwarder.

    ``contract`` and ``function`` name the receiver call; a target kind
    delivers to exactly one (``settlement``: ``SettlementGate.onReport``,
    ``feeds``: ``FeedConsumer.onReport``), and a spec naming any other is
    refused rather than silently ignored. A ``log`` target names none.
    """

    kind: Literal["log", "settlement", "feeds"] = "log"
    contract: str | None = None
    function: str | None = None

    @model_validator(mode="after")
    def _check_call(self) -> Self:
        if self.kind == "log":
            if self.contract is not None or self.function is not None:
                raise ValueError(
                    "a log target only writes the attestation log and names no contract or "
                    'function; use kind = "feeds" for FeedConsumer.onReport or kind = '
                    '"settlement" for SettlementGate.onReport'
                )
            return self
        contract, function = TARGETS[self.kind]
        asked = (self.contract or contract, self.function or function)
        if asked != (contract, function):
            raise ValueError(
                f"target kind {self.kind!r} delivers to {contract}.{function} through the "
                f"Forwarder, not {asked[0]}.{asked[1]}"
            )
        return self

    @property
    def call(self) -> tuple[str, str] | None:
        """(contract, function) the report is delivered to; None for a log target."""
        return TARGETS.get(self.kind)


class WorkflowSpec(_Strict):
    """A whole workflow."""

    name: str = Field(pattern=r"^[ -~]{1,10}$")
    trigger: Trigger
    capabilities: list[Capability] = Field(min_length=1)
    consensus: ConsensusSpec = ConsensusSpec()
    target: TargetSpec = TargetSpec()

    @model_validator(mode="after")
    def _trigger_fits_target(self) -> Self:
        settles = self.target.kind == "settlement"
        if isinstance(self.trigger, ProposalTrigger) and not settles:
            raise ValueError("a proposal trigger needs target kind = settlement")
        if settles and not isinstance(self.trigger, ProposalTrigger | HttpTrigger):
            raise ValueError(
                "a settlement target needs a proposal or http trigger (the trade comes from it)"
            )
        return self

    @classmethod
    def load(cls, path: Path) -> WorkflowSpec:
        """Read a spec from TOML, JSON or YAML (by extension).

        Raises:
            ConfigError: unreadable, unsupported format, or invalid (each problem named).
        """
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read workflow {path}: {exc.strerror}") from None
        try:
            return cls.model_validate(_parse(path, text))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid workflow {path}: {problems}") from None


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
        if suffix in (".yaml", ".yml"):
            return _yaml(text, path)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"workflow {path} does not parse: {exc}") from None
    raise ConfigError(f"workflow {path}: use .toml, .json, .yaml or .yml")


def _yaml(text: str, path: Path) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(
            f"workflow {path} is YAML but PyYAML is not installed; "
            "use TOML (stdlib) or `pip install pyyaml`"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"workflow {path} does not parse: {exc}") from None


__all__ = [
    "Capability",
    "ConsensusSpec",
    "EvmLogTrigger",
    "HttpTrigger",
    "IntervalTrigger",
    "ProposalTrigger",
    "TargetSpec",
    "WorkflowSpec",
]
