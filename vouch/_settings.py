"""Settings: environment (``VOUCH_...``) over ``vouch.toml`` over defaults, validated once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ._errors import SettingsError


class VouchSettings(BaseSettings):
    """Everything vouch can be configured with. Paths are relative to the working directory."""

    model_config = SettingsConfigDict(env_prefix="VOUCH_", toml_file="vouch.toml", extra="forbid")

    home: Path = Field(default=Path(".vouch"), description="state: chain, keys, deployments, log")
    rpc_url: str | None = Field(default=None, description="an existing EVM RPC; None starts anvil")
    chain_id: int = Field(default=31337, ge=1, description="chain id of the anvil vouch starts")
    nodes: int = Field(default=4, ge=4, le=31, description="oracle nodes in the DON")
    f: int = Field(default=1, ge=1, le=10, description="faulty nodes tolerated (n >= 3f+1)")
    keystore_password: SecretStr | None = Field(
        default=None, description="password of node keystores"
    )
    password_file: Path | None = Field(default=None, description="file holding that password")
    deployer_keystore: Path | None = Field(default=None, description="deployer key for a real RPC")
    workflow_name: str = Field(default="settlement", max_length=10, pattern=r"^[ -~]{1,10}$")
    freshness_window: int = Field(
        default=300, ge=10, le=86_400, description="report max age, seconds"
    )
    feed: str = Field(default="ETH/USD", pattern=r"^[A-Z0-9]{1,12}/[A-Z0-9]{1,12}$")
    market_seed: int = Field(default=7, description="seed of the mock market all honest nodes see")
    node_timeout: float = Field(default=5.0, gt=0, le=120, description="seconds to wait for a node")
    anchor_every: int = Field(
        default=25, ge=1, description="anchor the log onchain every N entries"
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
    toolchain_dir: Path | None = Field(default=None, description="checkout holding node_modules")

    @field_validator("f")
    @classmethod
    def _f_fits(cls, f: int, info: Any) -> int:
        nodes = info.data.get("nodes", 4)
        if nodes < 3 * f + 1:
            raise ValueError(
                f"{nodes} nodes cannot tolerate f={f}: need nodes >= 3f+1 = {3 * f + 1}"
            )
        return f

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
    def log_path(self) -> Path:
        """The attestation log."""
        return self.home / "attestations.db"

    def deployment_path(self, chain_id: int) -> Path:
        """The deployment manifest for ``chain_id``."""
        return self.home / "deployments" / f"{chain_id}.json"


def load_settings(**overrides: Any) -> VouchSettings:
    """Load and validate settings once, at start.

    Raises:
        SettingsError: naming each invalid setting.
    """
    try:
        return VouchSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(
            f"invalid settings ({problems}); fix VOUCH_* variables or vouch.toml"
        ) from None
