"""``vouch don init --hosts``: one bundle per host, with pinned TLS identities.

Layout of ``OUT`` (every ``don.json`` is the same file; its paths are
relative to the folder it is in, so a bundle can be copied anywhere)::

    OUT/owner/don.json          the DON config (every node's address, URL, certificate)
    OUT/owner/tls/owner.key     the owner's (coordinator's) TLS key
    OUT/owner/admin.token       the admin token (loopback admin on the owner's host)
    OUT/<host>/don.json         the same config
    OUT/<host>/keys/node-i.json and node-i.password   the node's keystore and its password
    OUT/<host>/tls/node-i.key   the node's TLS key

Only the owner's bundle holds the owner key; a node's bundle holds only its
own node keys. Nothing is written when anything is wrong, and an existing
``OUT`` is refused.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._don import DonConfig, NodeSpec
from ._errors import ConfigError
from ._keystore import create_keystore, ensure_password_file
from ._tls import make_identity

HOST = re.compile(r"^[A-Za-z0-9.:-]{1,253}$")


@dataclass(frozen=True)
class Bundles:
    """What ``init_bundles`` wrote: the config, the owner's folder, and host -> folder."""

    don: DonConfig
    owner: Path
    hosts: dict[str, Path]


def init_bundles(
    out: Path,
    hosts: list[str],
    *,
    f: int | None,
    chain_id: int,
    forwarder: str,
    port: int = 8443,
    owner_hosts: list[str] | None = None,
    don_id: int = 1,
    config_version: int = 1,
    scrypt_n: int | None = None,
) -> Bundles:
    """Make n = len(hosts) node identities (one node per entry) and write the bundles.

    Two entries naming one host put two nodes in that host's bundle, on
    consecutive ports.

    Raises:
        ConfigError: a bad host, an impossible n/f, or ``out`` exists.
    """
    if out.exists():
        raise ConfigError(f"{out} already exists: choose a new folder for the bundles")
    bad = [h for h in hosts if not HOST.match(h)]
    if bad or not hosts:
        raise ConfigError(f"--hosts must list one host (name or IP) per node, got {bad or hosts}")
    f = (len(hosts) - 1) // 3 if f is None else f
    staging = Path(
        tempfile.mkdtemp(prefix=".don-init-", dir=out.parent if out.parent.exists() else None)
    )
    try:
        bundles = _write(
            staging,
            hosts,
            f,
            chain_id,
            forwarder,
            port,
            owner_hosts or [],
            don_id,
            config_version,
            scrypt_n,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundles(
        bundles.don,
        out / "owner",
        {host: out / _folder(host) for host in dict.fromkeys(hosts)},
    )


def _folder(host: str) -> str:
    return "host-" + host.replace(":", "_")


def _write(
    out: Path,
    hosts: list[str],
    f: int,
    chain_id: int,
    forwarder: str,
    port: int,
    owner_hosts: list[str],
    don_id: int,
    config_version: int,
    scrypt_n: int | None,
) -> Bundles:
    nodes: list[NodeSpec] = []
    used: dict[str, int] = {}
    for i, host in enumerate(hosts, start=1):
        name = f"node-{i}"
        folder = out / _folder(host)
        keystore = folder / "keys" / f"{name}.json"
        password = ensure_password_file(keystore.with_suffix(".password"))
        address = create_keystore(keystore, password.read_text(), scrypt_n=scrypt_n)
        cert = make_identity(name, [host], folder / "tls" / f"{name}.key")
        node_port = port + used.get(host, 0)
        used[host] = used.get(host, 0) + 1
        nodes.append(
            NodeSpec(
                name=name,
                address=address,
                host=host,
                port=node_port,
                keystore=Path("keys") / f"{name}.json",
                tls_cert=cert,
                tls_key=Path("tls") / f"{name}.key",
            )
        )
    owner = out / "owner"
    owner_cert = make_identity("owner", owner_hosts, owner / "tls" / "owner.key")
    token = owner / "admin.token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32))
    try:
        don = DonConfig(
            don_id=don_id,
            config_version=config_version,
            f=f,
            chain_id=chain_id,
            forwarder=forwarder,
            nodes=nodes,
            admin_token_file=Path("admin.token"),
            owner_cert=owner_cert,
            owner_key=Path("tls") / "owner.key",
        )
    except ValueError as exc:
        raise ConfigError(f"cannot make this DON: {exc}") from None
    for folder in [owner, *(out / _folder(h) for h in dict.fromkeys(hosts))]:
        don.save(folder / "don.json")
    return Bundles(don, owner, {})


__all__ = ["Bundles", "init_bundles"]
