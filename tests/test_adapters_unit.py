"""cre_adapters without a chain: data sources, keystores, DON config validation."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.cre_adapters import (
    DataSourceError,
    DonConfig,
    KeystoreError,
    MockPriceSource,
    NodeSpec,
    create_keystore,
    keystore_address,
    load_key,
)

ONE = 10**18


def test_mock_source_is_deterministic_per_seed() -> None:
    a, b = MockPriceSource(7, 1), MockPriceSource(7, 1)
    assert asyncio.run(a.fetch("ETH/USD", 1_800_000_000)) == asyncio.run(
        b.fetch("ETH/USD", 1_800_000_000)
    )


@settings(max_examples=50, deadline=None)
@given(
    t=st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
    seeds=st.lists(st.integers(0, 10**6), min_size=2, max_size=6, unique=True),
)
def test_honest_nodes_agree_within_their_noise(t: int, seeds: list[int]) -> None:
    values = [
        asyncio.run(MockPriceSource(7, s, noise_bps=5).fetch("ETH/USD", t)).value for s in seeds
    ]
    market = MockPriceSource(7, 0).market_price("ETH/USD", t)
    for value in values:
        assert abs(value - market) <= market * 6 // 10_000
    assert 2_800 * ONE < market < 3_200 * ONE


def test_market_moves_over_time() -> None:
    source = MockPriceSource(7, 0)
    prices = {source.market_price("ETH/USD", 1_800_000_000 + 10 * i) for i in range(50)}
    assert len(prices) > 10


def test_mock_prices_serve_several_assets_each_on_its_own_walk() -> None:
    source = MockPriceSource(7, 0)
    assert {"ETH/USD", "BTC/USD", "LINK/USD"} <= set(source.feeds)
    t = 1_800_000_000
    eth, btc, link = (source.market_price(f, t) for f in ("ETH/USD", "BTC/USD", "LINK/USD"))
    assert 2_000 * ONE < eth < 4_000 * ONE and 40_000 * ONE < btc < 80_000 * ONE
    assert 10 * ONE < link < 20 * ONE
    later = [source.market_price(f, t + 600) / source.market_price(f, t) for f in source.feeds]
    assert len(set(later)) == len(later)  # each asset moves by its own steps


def test_unknown_feed_names_the_known_ones() -> None:
    with pytest.raises(DataSourceError, match="ETH/USD"):
        asyncio.run(MockPriceSource(7, 1).fetch("DOGE/USD", 1_800_000_000))


def test_keystore_is_encrypted_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    address = create_keystore(path, "pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_key(path, "pw")
    assert Account.from_key(key).address == address == keystore_address(path)
    assert key.hex() not in path.read_text()
    assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"


def test_wrong_password_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    create_keystore(path, "pw")
    with pytest.raises(KeystoreError, match="wrong password"):
        load_key(path, "nope")


def test_keystore_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    create_keystore(path, "pw")
    with pytest.raises(KeystoreError, match="already exists"):
        create_keystore(path, "pw")


def _nodes(n: int) -> list[NodeSpec]:
    return [
        NodeSpec(
            name=f"node-{i}",
            address=Account.create().address,
            port=9000 + i,
            keystore=Path(f"k{i}"),
        )
        for i in range(n)
    ]


def test_don_needs_3f_plus_1_nodes() -> None:
    forwarder = Account.create().address
    DonConfig(f=1, chain_id=1, forwarder=forwarder, nodes=_nodes(4))
    with pytest.raises(ValueError, match="3f\\+1"):
        DonConfig(f=1, chain_id=1, forwarder=forwarder, nodes=_nodes(3))
    with pytest.raises(ValueError, match="at most 31"):
        DonConfig(f=10, chain_id=1, forwarder=forwarder, nodes=_nodes(32))


@pytest.mark.parametrize(("n", "f"), [(4, 1), (5, 1), (7, 2), (10, 3), (31, 10)])
def test_don_takes_any_n_with_n_at_least_3f_plus_1_up_to_31(n: int, f: int) -> None:
    don = DonConfig(f=f, chain_id=1, forwarder=Account.create().address, nodes=_nodes(n))
    assert len(don.signers) == n and don.quorum == 2 * f + 1


def test_vouch_settings_refuse_more_than_31_nodes_or_too_few_for_f(tmp_path: Path) -> None:
    from vouch import SettingsError, load_settings

    assert load_settings(home=tmp_path, nodes=31, f=10).nodes == 31
    with pytest.raises(SettingsError, match="--nodes .*less than or equal to 31") as raised:
        load_settings(home=tmp_path, nodes=32, f=10)
    assert "--f" not in str(raised.value)  # f is not blamed for the nodes' error
    with pytest.raises(SettingsError, match="need nodes >= 3f\\+1 = 7"):
        load_settings(home=tmp_path, nodes=6, f=2)


def test_don_rejects_duplicate_signers_and_ports() -> None:
    nodes = _nodes(4)
    dup = [*nodes[:3], nodes[3].model_copy(update={"address": nodes[0].address})]
    with pytest.raises(ValueError, match="duplicate node address"):
        DonConfig(f=1, chain_id=1, forwarder=Account.create().address, nodes=dup)
    dup_port = [*nodes[:3], nodes[3].model_copy(update={"port": nodes[0].port})]
    with pytest.raises(ValueError, match="duplicate node port"):
        DonConfig(f=1, chain_id=1, forwarder=Account.create().address, nodes=dup_port)


def test_node_spec_rejects_a_bad_address() -> None:
    with pytest.raises(ValueError, match="not an Ethereum address"):
        NodeSpec(name="node-1", address="0x1234", port=9000, keystore=Path("k"))
