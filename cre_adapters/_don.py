"""The DON's configuration: who the nodes are, where they listen, what they may sign."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vouch.verifier._types import to_checksum

from ._errors import ConfigError
from ._faults import FaultSpec
from ._sources import EvmQuery, HttpFeed

MAX_NODES = 31


def checksum(value: str) -> str:
    """Return ``value`` as a checksum address, or raise ValueError naming it."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an Ethereum address")
    return _checksum(value)


@functools.lru_cache(maxsize=4096)
def _checksum(value: str) -> str:
    # every sign request names the same few receivers: cached
    try:
        return to_checksum(value)
    except (ValueError, TypeError):
        raise ValueError(f"{value!r} is not an Ethereum address") from None


class SourceSpec(BaseModel):
    """A node's data source: a seeded mock (prices or rates), HTTP feeds, or EVM reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["mock-price", "mock-rates", "http", "evm"] = "mock-price"
    market_seed: int = 7
    node_seed: int = 0
    noise_bps: int = Field(default=5, ge=0, le=10_000)
    http: dict[str, HttpFeed] = Field(default_factory=dict, description="kind=http: feeds")
    rpc_url: str | None = Field(default=None, description="kind=evm: the chain to read")
    evm: dict[str, EvmQuery] = Field(default_factory=dict, description="kind=evm: feeds")


class NodeSpec(BaseModel):
    """One oracle node: its signer address, where it listens, where its encrypted key lives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    address: str
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    keystore: Path
    source: SourceSpec = SourceSpec()
    fault: FaultSpec = FaultSpec()
    tls_cert: str | None = Field(
        default=None,
        description="the node's pinned self-signed TLS certificate (PEM); set: the node speaks "
        "HTTPS with mutual TLS (see docs/don.md, Separate hosts)",
    )
    tls_key: Path | None = Field(
        default=None, description="the node's TLS private key (0600), on the node's own host"
    )
    listen: str | None = Field(default=None, description="address the node binds (default: host)")

    _check_address = field_validator("address")(classmethod(lambda cls, v: checksum(v)))

    @property
    def url(self) -> str:
        """The node's base URL (https when the DON pins TLS certificates)."""
        scheme = "https" if self.tls_cert else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


class ChainTarget(BaseModel):
    """Another chain whose forwarder (configured with this DON's signers) takes its reports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int = Field(ge=1)
    forwarder: str

    _check_forwarder = field_validator("forwarder")(classmethod(lambda cls, v: checksum(v)))


class DonConfig(BaseModel):
    """A DON: n nodes tolerating f faults (n >= 3f+1), bound to one forwarder on one chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    don_id: int = Field(default=1, ge=1, lt=2**32)
    config_version: int = Field(default=1, ge=1, lt=2**32)
    f: int = Field(ge=1, le=10)
    chain_id: int = Field(ge=1)
    forwarder: str
    nodes: list[NodeSpec]
    max_observation_age: int = Field(
        default=30, ge=1, description="seconds; older observations are stale and rejected"
    )
    observation_band_bps: int = Field(
        default=100,
        ge=0,
        description="every observation in a consensus set lies this close to the set's median",
    )
    echo: bool = Field(
        default=True, description="ask every node twice per round to expose equivocation"
    )
    cross_check: bool = Field(
        default=False,
        description="every signer asks each observer in the set for its answer itself before "
        "signing: an equivocator shows it another answer, and it refuses (costs 2f+1 asks)",
    )
    admin_token_file: Path | None = Field(
        default=None, description="0600 file with the admin token; None disables /admin"
    )
    targets: list[ChainTarget] = Field(
        default_factory=list, description="other chains this DON signs reports for"
    )
    owner_cert: str | None = Field(
        default=None,
        description="the DON owner's TLS client certificate (PEM): the coordinator shows it, "
        "and a node serves /admin off loopback only to it",
    )
    owner_key: Path | None = Field(
        default=None, description="the owner's TLS private key (only on the owner's host)"
    )

    _check_forwarder = field_validator("forwarder")(classmethod(lambda cls, v: checksum(v)))

    @model_validator(mode="after")
    def _check_shape(self) -> Self:
        n = len(self.nodes)
        if n > MAX_NODES:
            raise ValueError(f"{n} nodes configured; a DON has at most {MAX_NODES}")
        if n < 3 * self.f + 1:
            raise ValueError(
                f"{n} nodes cannot tolerate f={self.f}; need n >= 3f+1 = {3 * self.f + 1}"
            )
        pinned = [node.tls_cert is not None for node in self.nodes]
        if any(pinned) and not (all(pinned) and self.owner_cert):
            raise ValueError(
                "TLS is all or nothing: every node needs tls_cert and the DON owner_cert "
                "(make them with `vouch don init --hosts`)"
            )
        for attr in ("address", "name", "port"):
            values = [  # nodes on separate hosts may share a port number
                f"{node.host}:{node.port}" if attr == "port" else getattr(node, attr)
                for node in self.nodes
            ]
            dupes = sorted({str(v) for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"duplicate node {attr}: {', '.join(dupes)}")
        return self

    @property
    def tls(self) -> bool:
        """True when the nodes speak mutual TLS with pinned certificates."""
        return self.owner_cert is not None

    @property
    def signers(self) -> list[str]:
        """Signer addresses in configuration order."""
        return [node.address for node in self.nodes]

    @property
    def quorum(self) -> int:
        """Observations needed for consensus: 2f+1."""
        return 2 * self.f + 1

    def digest(self, chain_id: int | None = None) -> bytes:
        """The configDigest of every reportContext for ``chain_id`` (None: the DON's own chain).

        Raises:
            ConfigError: the DON has no forwarder on ``chain_id``.
        """
        forwarder = self.forwarder
        if chain_id is not None and chain_id != self.chain_id:
            found = [t.forwarder for t in self.targets if t.chain_id == chain_id]
            if not found:
                known = [self.chain_id, *(t.chain_id for t in self.targets)]
                raise ConfigError(f"this DON signs for chains {known}, not {chain_id}")
            forwarder = found[0]
        from vouch.verifier import config_digest  # eth_abi: not at a node's start-up

        return config_digest(
            chain_id or self.chain_id,
            forwarder,
            self.don_id,
            self.config_version,
            self.f,
            self.signers,
        )

    def node(self, name: str) -> NodeSpec:
        """Return the node called ``name``.

        Raises:
            ConfigError: if there is no such node.
        """
        for node in self.nodes:
            if node.name == name:
                return node
        raise ConfigError(
            f"no node {name!r} in the DON config; known: {[n.name for n in self.nodes]}"
        )

    def save(self, path: Path) -> None:
        """Write the config as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> DonConfig:
        """Read and validate a DON config file.

        Raises:
            ConfigError: if the file is missing or invalid.
        """
        try:
            don = cls.model_validate_json(path.read_text())
        except OSError as exc:
            raise ConfigError(
                f"cannot read DON config {path}: {exc.strerror}; run `vouch don up`"
            ) from exc
        except ValueError as exc:
            raise ConfigError(f"invalid DON config {path}: {exc}") from exc
        return don.relative_to(path.parent)

    def relative_to(self, folder: Path) -> DonConfig:
        """This config with relative key and token paths taken from ``folder`` (a bundle's)."""

        def place(path: Path | None) -> Path | None:
            return None if path is None or path.is_absolute() else folder / path

        nodes = []
        for node in self.nodes:
            moved = {k: place(getattr(node, k)) for k in ("keystore", "tls_key")}
            nodes.append(node.model_copy(update={k: v for k, v in moved.items() if v}))
        moved = {k: place(getattr(self, k)) for k in ("admin_token_file", "owner_key")}
        return self.model_copy(update={"nodes": nodes, **{k: v for k, v in moved.items() if v}})


class NodeOverride(BaseModel):
    """What a DON sources file says about one node: its data source and/or fault mode.

    Only the fields given are changed (the node keeps its own seeds otherwise).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: dict[str, object] | None = None
    fault: FaultSpec | None = None


class DonSources(BaseModel):
    """A DON sources file: a ``source`` for every node, and per-node ``nodes.NAME`` overrides.

    TOML example (JSON and YAML take the same shape)::

        [source]                      # every node: FX and rates instead of prices
        kind = "mock-rates"
        [nodes.node-2.source]         # node-2 reads a real URL
        kind = "http"
        http = { "ETH/USD" = { url = "http://127.0.0.1:8000/eth", path = "price" } }
        [nodes.node-4]
        fault = { mode = "lie", lie_bps = 300 }
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: dict[str, object] | None = None
    nodes: dict[str, NodeOverride] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> DonSources:
        """Read a sources file (.toml, .json, .yaml).

        Raises:
            ConfigError: unreadable, unparsable or invalid, naming the problem.
        """
        from ._spec import _parse

        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read DON sources file {path}: {exc.strerror}") from None
        try:
            return cls.model_validate(_parse(path, text))
        except ValueError as exc:
            raise ConfigError(f"invalid DON sources file {path}: {exc}") from None

    def apply(self, don: DonConfig) -> DonConfig:
        """``don`` with every node's source (and fault) as this file says.

        Raises:
            ConfigError: the file names a node the DON does not have, or a source is invalid.
        """
        known = [n.name for n in don.nodes]
        unknown = sorted(set(self.nodes) - set(known))
        if unknown:
            raise ConfigError(f"DON sources file names unknown node(s) {unknown}; known: {known}")
        return don.model_copy(update={"nodes": [self._node(node) for node in don.nodes]})

    def _node(self, node: NodeSpec) -> NodeSpec:
        override = self.nodes.get(node.name, NodeOverride())
        merged = {**node.source.model_dump(), **(self.source or {}), **(override.source or {})}
        try:
            source = SourceSpec.model_validate(merged)
        except ValueError as exc:
            raise ConfigError(f"node {node.name}: invalid source: {exc}") from None
        return node.model_copy(update={"source": source, "fault": override.fault or node.fault})
