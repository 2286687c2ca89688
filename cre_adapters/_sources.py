"""Data sources a node observes: one abstract interface, several implementations.

Every node owns its own source. The mock feeds model a market that all honest
nodes see (same ``market_seed``) plus a little per-node noise (``node_seed``),
so honest observations differ slightly, as they do on a real DON.

- ``MockPriceSource``: crypto prices (seeded multi-scale walk, several assets).
- ``MockRatesSource``: FX pairs and interest rates, same model, calmer.
- ``EvmReadSource``: native balance, ERC-20 balance/allowance, event-log count
  on any chain an RPC URL reaches (web3's AsyncWeb3).
- ``HttpJsonSource``: an integer at a path in the JSON of a real URL (httpx).

Each one passes the conformance suite in ``tests/don/test_sources.py``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

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

    async def fetch_ref(self, feed: str, at: int, ref: str) -> Quote:
        """The value of ``feed`` about one onchain thing, ``ref`` (``0x<tx hash>:<log index>``).

        Raises:
            DataSourceError: this source has no such feed (the default: none).
        """
        raise DataSourceError(f"feed {feed!r} of this source takes no ref ({ref})")


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
        self._last: dict[str, tuple[int, int]] = {}  # feed -> (step, price): one walk per step

    @property
    def feeds(self) -> tuple[str, ...]:
        """The feeds this source can answer."""
        return tuple(sorted(self._bases))

    def market_price(self, feed: str, at: int) -> int:
        """The noiseless market price of ``feed`` at ``at`` (what every honest node tracks)."""
        step = at // self._step
        cached = self._last.get(feed)
        if cached is not None and cached[0] == step:
            return cached[1]
        price = self._walk(feed, step)
        self._last[feed] = (step, price)
        return price

    def _walk(self, feed: str, step: int) -> int:
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


DEFAULT_RATES: Mapping[str, int] = {
    "EUR/USD": 108 * ONE // 100,
    "GBP/USD": 127 * ONE // 100,
    "USD/JPY": 150 * ONE,
    "SOFR/PCT": 53 * ONE // 10,  # 5.3 percent
}


class MockRatesSource(MockPriceSource):
    """FX pairs and interest rates: the same seeded walk, about ten times calmer."""

    _SWING = 0.004

    def __init__(
        self,
        market_seed: int,
        node_seed: int,
        noise_bps: int = 1,
        step_seconds: int = 60,
        base_prices: Mapping[str, int] = DEFAULT_RATES,
    ) -> None:
        super().__init__(market_seed, node_seed, noise_bps, step_seconds, base_prices)


class EvmQuery(BaseModel):
    """One EVM read: ``kind`` and its addresses (``topic`` for logs, a 0x 32-byte hex)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["balance", "erc20-balance", "allowance", "log-count", "message"]
    address: str
    holder: str | None = None
    spender: str | None = None
    topic: str | None = None
    from_block: int = 0


_ERC20 = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "name": "allowance",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]


class EvmReadSource(DataSource):
    """Reads from any EVM chain: balances, allowances and event-log counts, as named feeds.

    Args:
        rpc_url: the chain's JSON-RPC URL.
        queries: feed name (``WETH/BAL``) to what to read.
        timeout: seconds per RPC call.
    """

    def __init__(self, rpc_url: str, queries: Mapping[str, EvmQuery], timeout: float = 5.0):
        from web3 import AsyncHTTPProvider, AsyncWeb3

        self._w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self._queries = dict(queries)
        self._url = rpc_url

    @property
    def feeds(self) -> tuple[str, ...]:
        """The named reads this source answers."""
        return tuple(sorted(self._queries))

    async def fetch(self, feed: str, at: int) -> Quote:
        """Read ``feed`` at the latest block; ``observed_at`` is that block's timestamp."""
        query = _lookup(self._queries, feed)
        try:
            block = await self._w3.eth.get_block("latest")
            value = await self._read(query, block["number"])
        except DataSourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any RPC failure is this source's failure
            raise DataSourceError(f"EVM read {feed} at {self._url} failed: {exc}") from None
        finally:
            # web3 caches one aiohttp session per event loop; close it with this loop's work
            await self._w3.provider.disconnect()
        return Quote(feed=feed, value=value, observed_at=int(block["timestamp"]))

    async def fetch_ref(self, feed: str, at: int, ref: str) -> Quote:
        """A ``message`` feed: the attested hash of the MessageSent event at ``ref``.

        The event must come from the query's gateway address; the value is
        ``attested_value(abi.encode(Message))``, observed at ``at`` (now: the
        event may be old, the reading of it is not).
        """
        from ._messages import attested_value, encode_message, message_from_log, split_ref

        query = _lookup(self._queries, feed)
        if query.kind != "message":
            return await super().fetch_ref(feed, at, ref)
        tx, index = split_ref(ref)
        try:
            receipt = await self._w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
            chain_id = await self._w3.eth.chain_id
            entry = next((e for e in receipt["logs"] if int(e["logIndex"]) == index), None)
            if entry is None or entry["address"].lower() != query.address.lower():
                raise DataSourceError(f"{feed}: no event of {query.address} at {ref}")
            message = message_from_log(chain_id, entry)
        except DataSourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any RPC or decoding failure is this source's
            raise DataSourceError(
                f"reading {feed} at {ref} from {self._url} failed: {exc}"
            ) from None
        finally:
            await self._w3.provider.disconnect()
        return Quote(feed=feed, value=attested_value(encode_message(message)), observed_at=at)

    async def _read(self, query: EvmQuery, block: int) -> int:
        from web3 import AsyncWeb3

        address = AsyncWeb3.to_checksum_address(query.address)
        if query.kind == "balance":
            return int(await self._w3.eth.get_balance(address, block))
        if query.kind == "log-count":
            params: dict[str, Any] = {"address": address, "fromBlock": query.from_block}
            params["toBlock"] = block
            if query.topic:
                params["topics"] = [query.topic]
            return len(await self._w3.eth.get_logs(params))  # type: ignore[arg-type]
        token = self._w3.eth.contract(address=address, abi=_ERC20)
        holder = AsyncWeb3.to_checksum_address(_need(query.holder, "holder"))
        if query.kind == "erc20-balance":
            return int(await token.functions.balanceOf(holder).call(block_identifier=block))
        spender = AsyncWeb3.to_checksum_address(_need(query.spender, "spender"))
        return int(await token.functions.allowance(holder, spender).call(block_identifier=block))


class HttpFeed(BaseModel):
    """Where an ``HttpJsonSource`` feed lives: a URL, a dotted path, decimals to scale by."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    path: str
    decimals: int = PRICE_DECIMALS


class HttpJsonSource(DataSource):
    """Fetches real URLs; the value is a number at a dotted path in the JSON body, scaled to an int.

    Args:
        feeds: feed name to where it is fetched.
        timeout: seconds per request.
    """

    def __init__(self, feeds: Mapping[str, HttpFeed], timeout: float = 5.0) -> None:
        self._feeds = dict(feeds)
        self._timeout = timeout

    @property
    def feeds(self) -> tuple[str, ...]:
        """The feeds this source can answer."""
        return tuple(sorted(self._feeds))

    async def fetch(self, feed: str, at: int) -> Quote:
        """GET the feed's URL and read its number (no floats: parsed as a decimal)."""
        import httpx  # only a node with an HTTP source pays for it

        spec = _lookup(self._feeds, feed)
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.get(spec.url)
            response.raise_for_status()
            body = response.json(parse_float=Decimal)
        except (httpx.HTTPError, ValueError) as exc:
            raise DataSourceError(f"fetching {feed} from {spec.url} failed: {exc}") from None
        return Quote(
            feed=feed, value=_scaled(_dig(body, spec.path, feed), spec.decimals), observed_at=at
        )


def _dig(body: Any, path: str, feed: str) -> Any:
    for part in path.split("."):
        if isinstance(body, list) and part.isdigit() and int(part) < len(body):
            body = body[int(part)]
        elif isinstance(body, dict) and part in body:
            body = body[part]
        else:
            raise DataSourceError(f"{feed}: no {part!r} at {path!r} in the response")
    return body


def _scaled(value: Any, decimals: int) -> int:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise DataSourceError(f"{value!r} is not a number") from None
    return int(number.scaleb(decimals).to_integral_value())


def _lookup(table: Mapping[str, Any], feed: str) -> Any:
    try:
        return table[feed]
    except KeyError:
        known = ", ".join(sorted(table))
        raise DataSourceError(f"unknown feed {feed!r}; this source serves {known}") from None


def _need(value: str | None, name: str) -> str:
    if value is None:
        raise DataSourceError(f"this EVM read needs {name}")
    return value
