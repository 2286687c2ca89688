"""Nodes on separate hosts (here: separate loopback addresses) over pinned mutual TLS.

Each node listens on its own address (127.0.0.1..4, one port), started from
its own bundle of ``vouch don init --hosts`` the way a node host starts it.
The attacks come first: a client without the owner's certificate, a node
showing another node's certificate, admin off loopback without the owner's
certificate, a node given a key that is not its pinned certificate's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vouch.cre_adapters import (
    Bundles,
    Coordinator,
    DonConfig,
    HttpxClient,
    ObserveRequest,
    WireError,
)
from vouch.cre_adapters._tls import client_context, make_identity
from vouch.cre_adapters.evm import free_port

from ..integration.helpers import vouch_cli as vouch
from ._hosts import bundles, node_command, settle, start_nodes, stop, wait_healthy

pytestmark = pytest.mark.integration

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]


@pytest.fixture(scope="module")
def tls_don(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundles]:
    root = tmp_path_factory.mktemp("tls")
    made = bundles(root / "bundles", HOSTS, free_port())
    procs = start_nodes(made, root)
    try:
        wait_healthy(DonConfig.load(made.owner / "don.json"), [n.name for n in made.don.nodes])
        yield made
    finally:
        stop(procs)


def owner_don(made: Bundles) -> DonConfig:
    return DonConfig.load(made.owner / "don.json")


def test_init_writes_one_bundle_per_host_holding_only_its_own_secrets(tmp_path: Path) -> None:
    made = bundles(tmp_path / "b", ["10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.3"], 9443)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "host-10.0.0.1",
        "host-10.0.0.2",
        "host-10.0.0.3",
        "owner",
    ]
    two = made.hosts["10.0.0.2"]
    assert sorted(p.name for p in (two / "tls").iterdir()) == ["node-2.key", "node-3.key"]
    assert sorted(p.name for p in (two / "keys").iterdir()) == [
        "node-2.json",
        "node-2.password",
        "node-3.json",
        "node-3.password",
    ]
    assert not (two / "admin.token").exists() and not (two / "tls" / "owner.key").exists()
    assert sorted(p.name for p in (made.owner / "tls").iterdir()) == ["owner.key"]
    assert not (made.owner / "keys").exists()
    for secret in [*two.glob("tls/*"), *two.glob("keys/*.password"), made.owner / "admin.token"]:
        assert secret.stat().st_mode & 0o077 == 0, secret
    texts = {(folder / "don.json").read_text() for folder in [made.owner, *made.hosts.values()]}
    assert len(texts) == 1  # one DON config, copied to every host
    don = DonConfig.load(two / "don.json")
    assert [(n.host, n.port) for n in don.nodes] == [
        ("10.0.0.1", 9443),
        ("10.0.0.2", 9443),
        ("10.0.0.2", 9444),
        ("10.0.0.3", 9443),
    ]
    assert don.node("node-2").keystore == two / "keys" / "node-2.json"  # relative to the bundle
    assert don.tls and all(n.url.startswith("https://") for n in don.nodes)
    assert len({n.tls_cert for n in don.nodes} | {don.owner_cert}) == 5


def test_a_round_settles_over_mutual_tls(tls_don: Bundles) -> None:
    don = owner_don(tls_don)

    async def go() -> list[list[str]]:
        async with Coordinator(don, timeout=10).connected() as coordinator:
            return [await settle(coordinator, seq) for seq in (1, 2)]

    for signers in asyncio.run(go()):
        assert len(signers) == 2


def test_a_client_without_the_owner_certificate_is_refused(
    tls_don: Bundles, tmp_path: Path
) -> None:
    don = owner_don(tls_don)
    stranger = make_identity("stranger", [], tmp_path / "stranger.key")
    body = b'{"request_id": "x1", "feed": "ETH/USD"}'

    async def ask(client: HttpxClient) -> tuple[int, bytes]:
        async with client:
            return await client.post(don.nodes[0].url + "/observe", body, 5)

    for client in (
        HttpxClient(don, cert=stranger, key=tmp_path / "stranger.key"),  # a self-made identity
        HttpxClient(don.model_copy(update={"owner_cert": None, "owner_key": None})),  # none
    ):
        with pytest.raises(WireError):
            asyncio.run(ask(client))
    with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port: no answer
        httpx.post(don.nodes[0].url.replace("https", "http") + "/observe", content=body)
    # and the owner is answered
    assert asyncio.run(ask(HttpxClient(don)))[0] == 200


def test_the_coordinator_refuses_a_node_that_shows_another_certificate(
    tls_don: Bundles,
) -> None:
    don = owner_don(tls_don)
    # node-1's pin replaced by node-2's certificate: node-1's real one no longer matches
    nodes = [don.nodes[0].model_copy(update={"tls_cert": don.nodes[1].tls_cert}), *don.nodes[1:]]
    impostor_view = don.model_copy(update={"nodes": nodes})

    async def observe_all(coordinator: Coordinator) -> Any:
        coordinator.spare = 3  # ask every node at once, node-1 included
        return await coordinator.observe_round(ObserveRequest(request_id="pin-1", feed="ETH/USD"))

    round_ = asyncio.run(observe_all(Coordinator(impostor_view, timeout=5)))
    absent = {a.node: a for a in round_.absent}
    assert absent["node-1"].cause == "down"
    assert "certificate" in absent["node-1"].detail
    assert "node-1" not in {o.node for o in round_.observed}


def test_admin_off_loopback_needs_the_owner_certificate(tls_don: Bundles) -> None:
    don = owner_don(tls_don)
    node = don.nodes[0]
    url = node.url + "/admin/fault"

    def get(cert: str | None, key: Path | None, local: str) -> httpx.Response:
        assert node.tls_cert is not None
        context = client_context(node.tls_cert, cert, key)
        transport = httpx.HTTPTransport(verify=context, local_address=local)
        with httpx.Client(transport=transport, timeout=5) as client:
            return client.get(url)

    peer = tls_don.don.nodes[1]
    peer_key = tls_don.hosts[peer.host] / "tls" / f"{peer.name}.key"
    remote = "127.0.0.9"  # not loopback to the node's check: another host's address
    as_peer = get(peer.tls_cert, peer_key, remote)
    assert as_peer.status_code == 403 and "owner's TLS certificate" in as_peer.json()["error"]
    as_owner = get(don.owner_cert, don.owner_key, remote)
    assert as_owner.status_code == 200 and as_owner.json()["mode"] == "none"
    # on loopback, a peer node's certificate is no admin credential either (no token on this host)
    local_peer = get(peer.tls_cert, peer_key, "127.0.0.1")
    assert local_peer.status_code == 403


def test_a_node_refuses_to_start_with_a_key_that_is_not_its_pinned_certificate(
    tls_don: Bundles, tmp_path: Path
) -> None:
    bundle = tmp_path / "host"
    shutil.copytree(tls_don.hosts["127.0.0.1"], bundle)
    other = tls_don.hosts["127.0.0.2"] / "tls" / "node-2.key"
    (bundle / "tls" / "node-1.key").write_bytes(other.read_bytes())
    done = subprocess.run(
        node_command(bundle, "node-1"), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert b"does not match the certificate the DON config pins" in done.stderr


def test_the_round_survives_a_node_killed_between_observe_and_sign(tmp_path: Path) -> None:
    made = bundles(tmp_path / "b", HOSTS, free_port())
    procs = start_nodes(made, tmp_path)
    try:
        don = owner_don(made)
        wait_healthy(don, [n.name for n in don.nodes])
        from ._hosts import check_signed, sign_request

        async def go() -> list[str]:
            async with Coordinator(don, timeout=5).connected() as coordinator:
                request = ObserveRequest(request_id="kill-1", feed="ETH/USD")
                observations = await coordinator.observe(request)
                first = coordinator.don.signers.index(observations[0].observation.node)
                procs[first].kill()  # a node of the set dies mid-round
                procs[first].wait()
                req, digest = sign_request(don, request, observations, 1)
                signers = check_signed(don, digest, await coordinator.sign(req, digest))
                assert don.signers[first] not in signers
                absent = {a.node: a.cause for a in coordinator.last_signing}
                return [f"{k}:{v}" for k, v in absent.items()]

        asyncio.run(go())
    finally:
        stop(procs)


def test_don_init_cli_writes_bundles_and_refuses_a_used_folder(tmp_path: Path) -> None:
    out = tmp_path / "b"
    hosts = "10.1.0.1,10.1.0.2,10.1.0.3,10.1.0.4"

    def init(hosts: str, out: Path) -> subprocess.CompletedProcess[str]:
        done = vouch(
            dict(os.environ),
            *("don", "init", "--hosts", hosts, "--out", str(out), "--scrypt-n", "1024"),
            *("--forwarder", "0x000000000000000000000000000000000000dEaD"),
        )
        done.stderr = " ".join(done.stderr.split())  # rich wraps long lines
        return done

    first = init(hosts, out)
    assert first.returncode == 0, first.stderr
    assert "bundle for 10.1.0.3" in first.stdout and "https://10.1.0.3:8443" in first.stdout
    before = sorted(str(p) for p in out.rglob("*"))
    again = init(hosts, out)
    assert again.returncode == 1 and "already exists: choose a new folder" in again.stderr
    assert sorted(str(p) for p in out.rglob("*")) == before  # nothing changed
    bad = init("10.1.0.1,bad host!", tmp_path / "c")
    assert bad.returncode == 1 and "--hosts must list one host" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "c").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".don-init-")]  # no leftovers


def test_a_pinned_key_cannot_issue_a_certificate_the_nodes_accept(
    tls_don: Bundles, tmp_path: Path
) -> None:
    """node-2 signs a fresh certificate with its own key: no node takes it (pins are no CA)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    don = owner_don(tls_don)
    peer = tls_don.don.nodes[1]
    assert peer.tls_cert is not None
    issuer_cert = x509.load_pem_x509_certificate(peer.tls_cert.encode())
    issuer_key = serialization.load_pem_private_key(
        (tls_don.hosts[peer.host] / "tls" / f"{peer.name}.key").read_bytes(), None
    )
    assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vouch owner")]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(issuer_key, hashes.SHA256())
    )
    key_file = tmp_path / "forged.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    chain = forged.public_bytes(serialization.Encoding.PEM).decode() + peer.tls_cert

    async def ask() -> tuple[int, bytes]:
        async with HttpxClient(don, cert=chain, key=key_file) as client:
            body = b'{"request_id": "forged-1", "feed": "ETH/USD"}'
            return await client.post(don.nodes[0].url + "/observe", body, 5)

    with pytest.raises(WireError):
        asyncio.run(ask())
