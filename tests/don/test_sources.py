"""Data sources: one conformance suite every source passes, then each source's own promises."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vouch.cre_adapters import (
    DataSource,
    DataSourceError,
    EvmQuery,
    EvmReadSource,
    HttpFeed,
    HttpJsonSource,
    MockPriceSource,
    MockRatesSource,
    Quote,
)
from vouch.cre_adapters.evm import free_port

ONE = 10**18
NOW = 1_800_000_000

BODY = {"data": {"price": "3001.25", "items": [{"rate": 0.0525}]}, "text": "n/a"}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/broken":
            self.send_response(500)
            self.end_headers()
            return
        payload = json.dumps(BODY).encode() if self.path == "/prices" else b"not json"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A real HTTP server on loopback for the HTTP source."""
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def http_source(base: str) -> HttpJsonSource:
    return HttpJsonSource(
        {
            "ETH/USD": HttpFeed(url=base + "/prices", path="data.price"),
            "SOFR/PCT": HttpFeed(url=base + "/prices", path="data.items.0.rate", decimals=4),
            "BAD/JSON": HttpFeed(url=base + "/text", path="x"),
            "BAD/HTTP": HttpFeed(url=base + "/broken", path="x"),
            "BAD/PATH": HttpFeed(url=base + "/prices", path="data.nope"),
            "BAD/NUM": HttpFeed(url=base + "/prices", path="text"),
        }
    )


def evm_source(env: Any) -> EvmReadSource:
    weth = env.deployment.address("WETH")
    me = env.writer.address
    return EvmReadSource(
        env.chain.url,
        {
            "DEV/ETH": EvmQuery(kind="balance", address=me),
            "WETH/BAL": EvmQuery(kind="erc20-balance", address=weth, holder=me),
            "WETH/ALLOW": EvmQuery(
                kind="allowance",
                address=weth,
                holder=me,
                spender=env.deployment.address("SettlementGate"),
            ),
            "FWD/LOGS": EvmQuery(kind="log-count", address=env.deployment.address("Forwarder")),
        },
    )


# the evm source needs the session's chain: marked at collection, so `make test-fast` leaves it out
SOURCES = ["mock-price", "mock-rates", "http", pytest.param("evm", marks=pytest.mark.integration)]


@pytest.fixture(params=SOURCES)
def source(request: pytest.FixtureRequest) -> tuple[DataSource, str]:
    """(source, a feed it serves)."""
    kind = request.param
    if kind == "mock-price":
        return MockPriceSource(7, 1), "ETH/USD"
    if kind == "mock-rates":
        return MockRatesSource(7, 1), "EUR/USD"
    if kind == "http":
        return http_source(request.getfixturevalue("server")), "ETH/USD"
    return evm_source(request.getfixturevalue("env")), "FWD/LOGS"


# conformance ---------------------------------------------------------------------------


def test_lists_the_feeds_it_serves(source: tuple[DataSource, str]) -> None:
    src, feed = source
    assert feed in src.feeds and list(src.feeds) == sorted(src.feeds)


def test_answers_a_quote_of_the_asked_feed_as_an_integer(source: tuple[DataSource, str]) -> None:
    src, feed = source
    at = int(time.time())
    quote = asyncio.run(src.fetch(feed, at))
    assert isinstance(quote, Quote) and quote.feed == feed
    assert type(quote.value) is int and quote.value >= 0
    assert abs(quote.observed_at - at) < 3600  # a chain's block time may lag the wall clock


def test_unknown_feed_is_a_data_source_error_naming_the_known_ones(
    source: tuple[DataSource, str],
) -> None:
    src, feed = source
    with pytest.raises(DataSourceError, match="unknown feed 'NOPE/X'") as info:
        asyncio.run(src.fetch("NOPE/X", NOW))
    assert feed in str(info.value)


def test_two_fetches_of_one_moment_agree(source: tuple[DataSource, str]) -> None:
    src, feed = source
    at = int(time.time())
    assert asyncio.run(src.fetch(feed, at)).value == asyncio.run(src.fetch(feed, at)).value


# each source ---------------------------------------------------------------------------


def test_rates_are_calm_and_several() -> None:
    src = MockRatesSource(7, 1)
    assert {"EUR/USD", "GBP/USD", "USD/JPY", "SOFR/PCT"} <= set(src.feeds)
    values = [asyncio.run(src.fetch("EUR/USD", NOW + 60 * i)).value for i in range(200)]
    assert max(values) - min(values) < 108 * ONE // 100 * 2 // 100  # within about 1%


def test_http_reads_decimals_without_floats(server: str) -> None:
    src = http_source(server)
    assert asyncio.run(src.fetch("ETH/USD", NOW)).value == 300_125 * ONE // 100
    assert asyncio.run(src.fetch("SOFR/PCT", NOW)).value == 525  # 0.0525 with 4 decimals


@pytest.mark.parametrize(
    ("feed", "needle"),
    [
        ("BAD/JSON", "failed"),
        ("BAD/HTTP", "500"),
        ("BAD/PATH", "'nope'"),
        ("BAD/NUM", "not a number"),
    ],
)
def test_http_failures_are_data_source_errors(server: str, feed: str, needle: str) -> None:
    with pytest.raises(DataSourceError, match=needle):
        asyncio.run(http_source(server).fetch(feed, NOW))


def test_http_server_down_is_a_data_source_error() -> None:
    src = HttpJsonSource({"ETH/USD": HttpFeed(url=f"http://127.0.0.1:{free_port()}/", path="p")})
    with pytest.raises(DataSourceError, match="failed"):
        asyncio.run(src.fetch("ETH/USD", NOW))


@pytest.mark.integration
def test_evm_reads_follow_the_chain(evm: Any) -> None:
    src = evm_source(evm)
    before = asyncio.run(src.fetch("DEV/ETH", NOW)).value
    logs = asyncio.run(src.fetch("FWD/LOGS", NOW)).value
    assert logs >= 1  # the forwarder's ConfigSet at deployment
    evm.writer.send_value("0x" + "33" * 20, 10**18)
    assert asyncio.run(src.fetch("DEV/ETH", NOW)).value <= before - 10**18
    assert asyncio.run(src.fetch("WETH/ALLOW", NOW)).value >= 0
    assert asyncio.run(src.fetch("WETH/BAL", NOW)).value >= 0


TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@pytest.mark.integration
def test_evm_reads_give_the_exact_allowance_balance_and_matching_log_count(evm: Any) -> None:
    weth = evm.contract("TestToken", evm.deployment.address("WETH"))
    me, spender = evm.writer.address, "0x" + "44" * 20
    src = EvmReadSource(
        evm.chain.url,
        {
            "WETH/ALLOW": EvmQuery(
                kind="allowance", address=weth.address, holder=me, spender=spender
            ),
            "WETH/BAL": EvmQuery(kind="erc20-balance", address=weth.address, holder=me),
            "WETH/XFERS": EvmQuery(kind="log-count", address=weth.address, topic=TRANSFER),
        },
    )
    read = lambda feed: asyncio.run(src.fetch(feed, NOW)).value  # noqa: E731
    balance, transfers = read("WETH/BAL"), read("WETH/XFERS")
    evm.writer.transact(weth.functions.approve(spender, 7 * ONE))
    evm.writer.transact(weth.functions.mint(me, 3 * ONE))
    assert read("WETH/ALLOW") == 7 * ONE
    assert read("WETH/BAL") == balance + 3 * ONE
    assert read("WETH/XFERS") == transfers + 1  # the mint's Transfer; Approval does not count


@pytest.mark.integration
def test_evm_rpc_down_is_a_data_source_error() -> None:
    src = EvmReadSource(
        f"http://127.0.0.1:{free_port()}",
        {"X/BAL": EvmQuery(kind="balance", address="0x" + "11" * 20)},
        timeout=1,
    )
    with pytest.raises(DataSourceError, match="EVM read X/BAL"):
        asyncio.run(src.fetch("X/BAL", NOW))
