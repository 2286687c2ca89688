"""Data sources a node observes: one abstract interface, a deterministic mock price feed.

Every node owns its own source. The mock feed models a market that all honest
nodes see (same ``market_seed``) plus a little per-node noise (``node_seed``),
so honest observations differ slightly, as they do on a real DON.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from ._errors import DataSourceError

PRICE_DECIMALS = 18
ONE = 10**PRICE_DECIMALS

DEFAULT_BASE_PRICES: Mapping[str, int] = {
    "ETH/USD": 3_000 * ONE,
    "BTC/USD": 60_000 * ONE,
    "LINK/USD": 15 * ONE,
}


class Quote(BaseModel):
    """One value of one feed at one time; ``value`` is an integer with 18 decimals."""

    model_config = ConfigDict(frozen=True)

    feed: str
    value: int
    observed_at: int


class DataSource(ABC):
    """Where a node gets the offchain facts it observes."""

    @property
    @abstractmethod
    def feeds(self) -> tuple[str, ...]:
        """The feeds this source can answer."""

    @abstractmethod
    async def fetch(self, feed: str, at: int) -> Quote:
        """Return the value of ``feed`` as of unix time ``at``.

        Raises:
            DataSourceError: if the feed is unknown or the value cannot be fetched.
        """


def _unit(*parts: object) -> float:
    """A deterministic number in [-1, 1) from the hash of ``parts``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0


def _to_feed_units(value: float) -> int:
    """Round to 8 significant decimals (as Chainlink feeds report), scaled to 18 decimals."""
    return round(value / 10**10) * 10**10


class MockPriceSource(DataSource):
    """A seeded multi-scale random walk per feed, plus per-node noise.

    Args:
        market_seed: shared by every honest node; fixes the market path.
        node_seed: this node's own seed; fixes its noise.
        noise_bps: the largest per-node deviation, in basis points.
        step_seconds: how often the market moves.
        base_prices: feed name to the price the walk wanders around.
    """

    _LEVELS = 12
    _SWING = 0.04  # the walk stays within about +-4% of the base price

    def __init__(
        self,
        market_seed: int,
        node_seed: int,
        noise_bps: int = 5,
        step_seconds: int = 10,
        base_prices: Mapping[str, int] = DEFAULT_BASE_PRICES,
    ) -> None:
        self._market_seed = market_seed
        self._node_seed = node_seed
        self._noise = noise_bps / 10_000
        self._step = step_seconds
        self._bases = dict(base_prices)

    @property
    def feeds(self) -> tuple[str, ...]:
        """The feeds this source can answer."""
        return tuple(sorted(self._bases))

    def market_price(self, feed: str, at: int) -> int:
        """The noiseless market price of ``feed`` at ``at`` (what every honest node tracks)."""
        step = at // self._step
        move = sum(
            _unit(self._market_seed, feed, level, step >> level) / 2 ** (self._LEVELS - level)
            for level in range(self._LEVELS)
        )
        return _to_feed_units(self._base(feed) * (1 + self._SWING * move))

    async def fetch(self, feed: str, at: int) -> Quote:
        """Return the market price with this node's noise applied."""
        market = self.market_price(feed, at)
        noise = _unit(self._node_seed, feed, at // self._step) * self._noise
        return Quote(feed=feed, value=_to_feed_units(market * (1 + noise)), observed_at=at)

    def _base(self, feed: str) -> int:
        try:
            return self._bases[feed]
        except KeyError:
            known = ", ".join(self.feeds)
            raise DataSourceError(f"unknown feed {feed!r}; this source serves {known}") from None
