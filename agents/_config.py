"""Model tiers: the engine asks for a tier ("small" or "large"), settings say which model serves it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._embed import Embedder, HashingEmbedder
from ._memory import LongTermMemory, ShortTermMemory
from ._model import ChatModel, OfflineModel
from ._openai import Endpoint, OpenAIChatModel, OpenAIEmbedder, check_served, served_models
from ._usage import PriceTable
from ._vectors import SQLiteVectorStore

Tier = Literal["small", "large"]


class ModelSettings(BaseModel):
    """Which endpoint serves each tier, what models cost, and where embeddings come from.

    With nothing configured every tier is the offline deterministic model and
    embeddings are the offline hashing embedder: no key, no network.

    Attributes:
        small: routine steps (summaries, tool calls); falls back to ``large``, then offline.
        large: planning and review; falls back to ``small``, then offline.
        embeddings: an OpenAI-compatible ``/embeddings`` endpoint, or None for offline.
        embedding_dimensions: the vector size of that endpoint's model.
        prices: USD per million tokens per configured model name, for budgets (none are
            needed without a USD budget).
        small_max_tokens: the ``max_tokens`` of the small tier when its endpoint sets none.
        large_max_tokens: the ``max_tokens`` of the large tier when its endpoint sets none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    small: Endpoint | None = None
    large: Endpoint | None = None
    embeddings: Endpoint | None = None
    embedding_dimensions: int = Field(default=512, gt=0)
    prices: PriceTable = Field(default_factory=PriceTable)
    small_max_tokens: int = Field(default=1024, gt=0)
    large_max_tokens: int = Field(default=4096, gt=0)

    @model_validator(mode="after")
    def _priced(self) -> ModelSettings:
        for endpoint in (self.small, self.large):
            if endpoint is not None and self.prices.require:
                self.prices.cost(endpoint.model, 0, 0)  # raises ModelConfigError when unpriced
        return self


class Models:
    """Hands out a chat model per tier and the embedder; the engine never sees a model name.

    Args:
        settings: the model settings.
        offline: the model for unconfigured tiers (default: ``OfflineModel``).
    """

    def __init__(self, settings: ModelSettings | None = None, offline: ChatModel | None = None):
        self.settings = settings or ModelSettings()
        self._offline = offline or OfflineModel()
        self._chat: dict[str, OpenAIChatModel] = {}
        self._embedder: Embedder | None = None
        self.checked: dict[str, list[str] | None] | None = None
        """What ``check`` found (None: not checked yet)."""

    def for_tier(self, tier: Tier) -> ChatModel:
        """The chat model serving ``tier`` (the same instance on every call)."""
        primary, other = (
            (self.settings.small, self.settings.large)
            if tier == "small"
            else (self.settings.large, self.settings.small)
        )
        endpoint = primary or other
        if endpoint is None:
            return self._offline
        if endpoint.max_tokens is None:
            default = (
                self.settings.small_max_tokens
                if tier == "small"
                else self.settings.large_max_tokens
            )
            endpoint = endpoint.model_copy(update={"max_tokens": default})
        key = f"{id(primary or other)}:{endpoint.max_tokens}"
        if key not in self._chat:
            self._chat[key] = OpenAIChatModel(endpoint)
        return self._chat[key]

    async def check(self) -> dict[str, list[str] | None]:
        """Check each configured model name against its endpoint's ``/models``.

        An endpoint that does not answer ``/models`` is not checked (None in the
        result); one that lists models must list the configured name or a dated
        snapshot of it.

        Raises:
            ModelConfigError: a configured model is not among those its endpoint serves.
        """
        checked: dict[str, list[str] | None] = {}
        for endpoint in (self.settings.small, self.settings.large):
            if endpoint is None or endpoint.model in checked:
                continue
            served = await served_models(endpoint)
            checked[endpoint.model] = served
            if served is not None:
                check_served(endpoint, served)
        self.checked = checked
        return checked

    async def check_once(self) -> None:
        """``check``, the first time it is asked (a supervisor asks before every run)."""
        if self.checked is None:
            await self.check()

    def embedder(self) -> Embedder:
        """The configured embedder, or the offline hashing one."""
        if self._embedder is None:
            endpoint = self.settings.embeddings
            self._embedder = (
                OpenAIEmbedder(endpoint, self.settings.embedding_dimensions)
                if endpoint is not None
                else HashingEmbedder()
            )
        return self._embedder

    def short_term_memory(
        self,
        window_tokens: int = 3000,
        keep_recent: int = 4,
        instructions: str = "",
        archive: LongTermMemory | None = None,
    ) -> ShortTermMemory:
        """A conversation memory whose running summaries are written by the small tier.

        With ``archive`` (e.g. :meth:`long_term_memory`) every summary is also kept there.
        """
        return ShortTermMemory(
            self.for_tier("small"),
            window_tokens,
            keep_recent,
            instructions=instructions,
            archive=archive,
        )

    def long_term_memory(self, path: Path | str) -> LongTermMemory:
        """A SQLite-backed long-term memory under this embedder (the one routing uses)."""
        embedder = self.embedder()
        return LongTermMemory(embedder, SQLiteVectorStore(path, embedder.dimensions))

    @property
    def prices(self) -> PriceTable:
        """The price table from settings."""
        return self.settings.prices
