"""Settings: environment (``VOUCH_...``) over ``vouch.toml`` over defaults, validated once.

Models: one endpoint (``model_base_url``, ``model_name``, key, timeouts) serves
both tiers unless ``model_small`` / ``model_large`` override some of its fields
(env ``VOUCH_MODEL_SMALL__NAME`` ..., or ``[model_small]`` in vouch.toml).
``model_embeddings`` (``VOUCH_MODEL_EMBEDDINGS__NAME``, ``__DIMENSIONS``...) names an
OpenAI-compatible ``/embeddings`` model; unset, embeddings are the offline hashing ones.
``model_prices`` prices models in USD per million tokens; ``budget_usd`` /
``budget_tokens`` bound a run, ``agent_budgets`` one agent of a run. A USD
budget needs a price for every model that may serve it: checked at start.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vouch.agents import (
    Budget,
    Endpoint,
    Limits,
    ModelConfigError,
    Models,
    ModelSettings,
    OfflineModel,
    Price,
    PriceTable,
    Tier,
    UsageLedger,
)

from ._errors import SettingsError
from ._workflow_project import WorkflowProject

TIERS: tuple[Tier, ...] = ("small", "large")


class ModelTierSettings(BaseModel):
    """Overrides for one model tier; every field left unset comes from the ``model_*`` settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint")
    name: str | None = Field(default=None, description="model at that endpoint")
    api_key: SecretStr | None = Field(default=None, description="its API key")
    api_key_file: Path | None = Field(default=None, description="file (0600) with the key")
    timeout_seconds: float | None = Field(default=None, gt=0, description="per request")
    connect_timeout_seconds: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=20)
    stream: bool | None = Field(default=None, description="ask for streamed answers")


class EmbeddingSettings(BaseModel):
    """Where embeddings come from (long-term memory, semantic routing); no ``name``: offline.

    Unset ``base_url``, ``api_key`` and ``api_key_file`` come from the ``model_*`` settings.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(
        default=None, description="embedding model at an OpenAI-compatible /embeddings"
    )
    base_url: str | None = Field(default=None, description="its endpoint (default: model_base_url)")
    api_key: SecretStr | None = Field(default=None, description="its API key")
    api_key_file: Path | None = Field(default=None, description="file (0600) with the key")
    dimensions: int | None = Field(default=None, gt=0, description="the model's vector size")


class VouchSettings(BaseSettings):
    """Everything vouch can be configured with. Paths are relative to the working directory."""

    model_config = SettingsConfigDict(
        env_prefix="VOUCH_", env_nested_delimiter="__", toml_file="vouch.toml", extra="forbid"
    )

    home: Path = Field(default=Path(".vouch"), description="state: chain, keys, deployments, log")
    log_url: str | None = Field(
        default=None,
        description="the attestation log on a PostgreSQL server shared by several workers "
        "(postgresql://user@host:5432/db); None: the SQLite file home/attestations.db",
    )
    runs_url: str | None = Field(
        default=None,
        description="the run checkpoints and leases on a PostgreSQL server shared by several "
        "workers (postgresql://user@host:5432/db); None: the SQLite file home/runs.db",
    )
    rpc_url: str | None = Field(default=None, description="an existing EVM RPC; None starts anvil")
    chain_id: int = Field(default=31337, ge=1, description="chain id of the anvil vouch starts")
    nodes: int = Field(default=4, ge=4, le=31, description="oracle nodes in the DON")
    f: int = Field(default=1, ge=1, le=10, description="faulty nodes tolerated (n >= 3f+1)")
    keystore_password: SecretStr | None = Field(
        default=None,
        description="ONE password for every keystore (tests, CI); unset: each key has its own",
    )
    password_file: Path | None = Field(
        default=None, description="file holding that one shared password (an old home's)"
    )
    key_passwords: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="password per key id (node_1..node_31, approver, deployer); "
        "env VOUCH_KEY_PASSWORDS__NODE_1=...; unset: the key's own 0600 file <keystore>.password",
    )
    approver_keystore: Path | None = Field(
        default=None, description="the approver's keystore (may live outside home); None: home/keys"
    )
    approver_password_file: Path | None = Field(
        default=None, description="0600 file with the approver keystore's password"
    )
    deployer_keystore: Path | None = Field(default=None, description="deployer key for a real RPC")
    party_keystore: Path | None = Field(
        default=None,
        description=(
            "key the demo's trading parties derive from; share it between workers that take over "
            "each other's runs; None: anvil's first dev key on a managed chain, else the deployer key"
        ),
    )
    workflow: WorkflowProject | None = Field(
        default=None,
        description="[workflow] of a project (vouch init): module, receiver, config",
    )
    workflow_name: str = Field(
        default="settlement",
        max_length=10,
        pattern=r"^[ -~]{1,10}$",
        description="the settlement workflow's name in report metadata (<= 10 ASCII chars)",
    )
    freshness_window: int = Field(
        default=300, ge=10, le=86_400, description="report max age, seconds"
    )
    feed: str = Field(
        default="ETH/USD",
        pattern=r"^[A-Z0-9]{1,12}/[A-Z0-9]{1,12}$",
        description="the price feed a settlement is attested on (BASE/QUOTE)",
    )
    market_seed: int = Field(default=7, description="seed of the mock market all honest nodes see")
    node_timeout: float = Field(default=5.0, gt=0, le=120, description="seconds to wait for a node")
    anchor_every: int = Field(
        default=25,
        ge=1,
        description="anchor the log onchain once N entries wait (or anchor_seconds pass)",
    )
    anchor_seconds: float = Field(
        default=300.0,
        gt=0,
        description="anchor the log once its oldest unanchored entry is this many seconds old",
    )
    don_sources: Path | None = Field(
        default=None,
        description="DON sources file (.toml/.json/.yaml): each node's data source and fault",
    )
    approval_threshold: int = Field(
        default=10**18,
        ge=0,
        description="WETH (wei) above which a trade needs an approver's signature onchain; 0: never",
    )
    model_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint; None uses the offline model"
    )
    model_name: str = Field(default="gpt-4o-mini", description="model at that endpoint")
    model_api_key: SecretStr | None = Field(default=None, description="its API key")
    model_api_key_file: Path | None = Field(default=None, description="file (0600) with the key")
    model_timeout_seconds: float = Field(default=60.0, gt=0, description="per model request")
    model_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="to open a connection to the model endpoint"
    )
    model_max_retries: int = Field(default=3, ge=0, le=20, description="on 429/5xx/timeouts")
    model_stream: bool = Field(default=False, description="ask for streamed answers")
    model_small: ModelTierSettings = Field(
        default_factory=ModelTierSettings, description="routine steps: summaries, tool calls"
    )
    model_large: ModelTierSettings = Field(
        default_factory=ModelTierSettings, description="planning and review"
    )
    model_embeddings: EmbeddingSettings = Field(
        default_factory=EmbeddingSettings,
        description="embeddings endpoint; unset: the offline hashing embedder",
    )
    model_prices: dict[str, Price] = Field(
        default_factory=dict,
        description="USD per million input/output tokens per model name; '*' prices any other",
    )
    budget_usd: Decimal | None = Field(default=None, ge=0, description="the most a run may spend")
    budget_tokens: int | None = Field(
        default=None, ge=0, description="the most tokens a run may use"
    )
    agent_budgets: dict[str, Budget] = Field(
        default_factory=dict, description="per agent name: {usd, tokens} within one run"
    )
    toolchain_dir: Path | None = Field(
        default=None,
        description="a folder holding node_modules with anvil/forge/solc (before PATH); see docs/install.md",
    )
    anvil: Path | None = Field(default=None, description="the anvil program (else looked up)")
    forge: Path | None = Field(default=None, description="the forge program (else looked up)")
    solc: Path | None = Field(
        default=None, description="a solc program, or solcjs's shim (else looked up)"
    )

    @field_validator("log_url", "runs_url")
    @classmethod
    def _postgres_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"a {url.split(':', 1)[0][:20]!r} URL is not a PostgreSQL URL: give "
                "postgresql://user@host:5432/db "
                "(unset it to keep the SQLite files under home)"
            )
        return url

    @field_validator("f")
    @classmethod
    def _f_fits(cls, f: int, info: Any) -> int:
        nodes = info.data.get("nodes")
        if nodes is None:  # nodes itself is invalid: that error alone names the problem
            return f
        if nodes < 3 * f + 1:
            raise ValueError(
                f"{nodes} nodes cannot tolerate f={f}: need nodes >= 3f+1 = {3 * f + 1}"
            )
        return f

    @model_validator(mode="after")
    def _models_ready(self) -> VouchSettings:
        """Every tier's endpoint must have a key (unless on loopback), and a price under a USD budget."""
        for tier in TIERS:
            endpoint = self.endpoint(tier)
            if endpoint is None:
                continue
            try:
                endpoint.key()
            except ModelConfigError as exc:
                raise ValueError(
                    f"{tier} tier: {exc} (VOUCH_MODEL_API_KEY(_FILE), or "
                    f"VOUCH_MODEL_{tier.upper()}__API_KEY(_FILE) for this tier only)"
                ) from None
        self._embeddings_ready()
        self._priced()
        return self

    def _embeddings_ready(self) -> None:
        e = self.model_embeddings
        if e.name is None:
            return
        if e.base_url is None and self.model_base_url is None:
            raise ValueError(
                f"model_embeddings.name is {e.name!r} but no endpoint serves it: set "
                "VOUCH_MODEL_EMBEDDINGS__BASE_URL (or VOUCH_MODEL_BASE_URL)"
            )
        if e.dimensions is None:
            raise ValueError(
                f"model_embeddings.dimensions is needed with model {e.name!r}: its vector size, "
                "e.g. VOUCH_MODEL_EMBEDDINGS__DIMENSIONS=1536 for text-embedding-3-small"
            )
        endpoint = self.embeddings_endpoint()
        try:
            if endpoint is not None:
                endpoint.key()
        except ModelConfigError as exc:
            raise ValueError(
                f"embeddings: {exc} (VOUCH_MODEL_EMBEDDINGS__API_KEY(_FILE) or VOUCH_MODEL_API_KEY)"
            ) from None

    def _priced(self) -> None:
        usd = [n for n, b in self.agent_budgets.items() if b.usd is not None]
        if self.budget_usd is not None:
            usd.insert(0, "run")
        if not usd:
            return
        for tier in TIERS:
            name = self.tier_model(tier)
            if not self.prices().priced(name):
                what = "budget_usd" if usd[0] == "run" else f"agent_budgets[{usd[0]!r}].usd"
                raise ValueError(
                    f"{what} is a USD budget but model {name!r} ({tier} tier) has no price: "
                    f'add it to model_prices, e.g. VOUCH_MODEL_PRICES=\'{{"{name}": '
                    f'{{"input_per_mtok": 0.15, "output_per_mtok": 0.6}}}}\' or '
                    f'[model_prices."{name}"] in vouch.toml (USD per million tokens)'
                ) from None

    def endpoint(self, tier: Tier) -> Endpoint | None:
        """The endpoint serving ``tier``: its overrides over the ``model_*`` settings (None: offline)."""
        o = self.model_small if tier == "small" else self.model_large
        base_url = o.base_url or self.model_base_url
        if base_url is None:
            return None
        own_key = o.api_key is not None or o.api_key_file is not None
        return Endpoint(
            base_url=base_url,
            model=o.name or self.model_name,
            api_key=o.api_key if own_key else self.model_api_key,
            api_key_file=o.api_key_file if own_key else self.model_api_key_file,
            timeout_seconds=o.timeout_seconds or self.model_timeout_seconds,
            connect_timeout_seconds=o.connect_timeout_seconds or self.model_connect_timeout_seconds,
            max_retries=self.model_max_retries if o.max_retries is None else o.max_retries,
            stream=self.model_stream if o.stream is None else o.stream,
        )

    def embeddings_endpoint(self) -> Endpoint | None:
        """The ``/embeddings`` endpoint, or None for the offline hashing embedder."""
        e = self.model_embeddings
        base_url = e.base_url or self.model_base_url
        if e.name is None or base_url is None:
            return None
        own_key = e.api_key is not None or e.api_key_file is not None
        return Endpoint(
            base_url=base_url,
            model=e.name,
            api_key=e.api_key if own_key else self.model_api_key,
            api_key_file=e.api_key_file if own_key else self.model_api_key_file,
            timeout_seconds=self.model_timeout_seconds,
            connect_timeout_seconds=self.model_connect_timeout_seconds,
            max_retries=self.model_max_retries,
        )

    def tier_model(self, tier: Tier) -> str:
        """The name of the model serving ``tier`` (the offline model's when none is configured)."""
        endpoint = self.endpoint(tier)
        return endpoint.model if endpoint is not None else OfflineModel.name

    def prices(self) -> PriceTable:
        """``model_prices``, with the offline model at zero.

        Under a USD budget an unpriced model is an error; without one it is charged
        as unpriced (USD 0, ``priced`` false in the ledger).
        """
        free = Price(input_per_mtok=Decimal(0), output_per_mtok=Decimal(0))
        return PriceTable(
            prices={OfflineModel.name: free, **self.model_prices}, require=self.usd_budgeted
        )

    def model_settings(self) -> ModelSettings:
        """The tiers, the embeddings endpoint and the prices for ``agents.Models``."""
        embeddings = self.embeddings_endpoint()
        dimensions = self.model_embeddings.dimensions if embeddings is not None else None
        return ModelSettings(
            small=self.endpoint("small"),
            large=self.endpoint("large"),
            embeddings=embeddings,
            embedding_dimensions=dimensions or ModelSettings().embedding_dimensions,
            prices=self.prices(),
        )

    def models(self) -> Models:
        """A chat model per tier and the embedder (``Registry(models.embedder())`` routes by it).

        The engine asks for ``small`` or ``large``, never a name.
        """
        return Models(self.model_settings())

    @property
    def usd_budgeted(self) -> bool:
        """True when the run or any agent has a USD budget."""
        return self.budget_usd is not None or any(
            b.usd is not None for b in self.agent_budgets.values()
        )

    def budget(self) -> Budget:
        """The per-run budget."""
        return Budget(usd=self.budget_usd, tokens=self.budget_tokens)

    def ledger(self, run_id: str) -> UsageLedger:
        """A usage ledger for one run, enforcing the run's and each agent's budget."""
        return UsageLedger(run_id, self.prices(), self.budget(), self.agent_budgets)

    def limits(self, **overrides: Any) -> Limits:
        """Engine limits carrying the budgets and prices (``overrides``: other ``Limits`` fields)."""
        return Limits(
            budget=self.budget(),
            agent_budgets=self.agent_budgets,
            prices=self.prices(),
            **overrides,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments, then env, then vouch.toml."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    # where things live under home
    @property
    def chain_dir(self) -> Path:
        """Managed anvil: pid/url file, state dump, log."""
        return self.home / "chain"

    @property
    def don_dir(self) -> Path:
        """DON config, keystores, node logs and pids."""
        return self.home / "don"

    @property
    def node_keystore_paths(self) -> list[Path]:
        """Where each node's encrypted keystore lives (``vouch don up`` creates them)."""
        keys = self.don_dir / "keys"
        return [keys / f"node-{i}.json" for i in range(1, self.nodes + 1)]

    @property
    def log_path(self) -> Path:
        """The attestation log's SQLite file (unused when ``log_url`` is set)."""
        return self.home / "attestations.db"

    @property
    def log_location(self) -> str:
        """The attestation log: ``log_url`` if set, else the SQLite file (``open_log`` takes it)."""
        return self.log_url or str(self.log_path)

    @property
    def runs_location(self) -> str:
        """The run store: ``runs_url`` if set, else home/runs.db (``open_checkpoints`` takes it)."""
        return self.runs_url or str(self.home / "runs.db")

    def deployment_path(self, chain_id: int) -> Path:
        """The deployment manifest for ``chain_id``."""
        return self.home / "deployments" / f"{chain_id}.json"


def load_settings(**overrides: Any) -> VouchSettings:
    """Load and validate settings once, at start.

    Raises:
        SettingsError: naming each invalid setting.
    """
    import tomllib

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return VouchSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(_problem(e, given) for e in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # vouch.toml is not TOML
        where = Path("vouch.toml").resolve()
        raise SettingsError(
            f"invalid settings: {where} is not valid TOML ({exc}); fix the file or move it away"
        ) from None
    except OSError as exc:  # vouch.toml cannot be read (a folder, no permission)
        where = Path("vouch.toml").resolve()
        raise SettingsError(
            f"invalid settings: cannot read {where} ({exc.strerror or exc}); fix or remove it"
        ) from None


def _problem(error: Any, given: dict[str, Any]) -> str:
    """One invalid setting, named where the user set it: a flag, a variable or vouch.toml."""
    loc = [str(p) for p in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:
        return message
    name, env = loc[0], "VOUCH_" + "__".join(loc).upper()
    if name in given:
        where = f"--{name.replace('_', '-')} (or the {name!r} argument)"
    elif env in os.environ or f"VOUCH_{name.upper()}" in os.environ:
        where = f"the environment variable {env}"
    else:
        where = f"{'.'.join(loc)} in vouch.toml (or {env})"
    return f"{where}: {message}"
