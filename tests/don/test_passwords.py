"""One secret per key: every node keystore and the approver key has its own password.

Zero-config: each password is a random one in its own 0600 file next to the
keystore, made on first use. One key's password unlocks no other key; a
password file others may read is refused; the approver key may live outside
the vouch home; the node processes find their own passwords.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from vouch import Stack, load_settings
from vouch.cre_adapters import KeystoreError, load_key, password_file

from ..conftest import copy_cache, revert
from ..integration.helpers import vouch_cli as vouch


def test_every_node_key_has_its_own_0600_password_file(tmp_path: Path) -> None:
    stack = Stack(load_settings(home=tmp_path / "home"))
    keystores = stack.node_keystores()
    files = [password_file(path) for path in keystores]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    secrets = [f.read_text() for f in files]
    assert len(set(secrets)) == len(secrets) == 4
    assert not (tmp_path / "home" / "don" / "password").exists()  # no shared password
    load_key(keystores[0], secrets[0])
    with pytest.raises(KeystoreError, match="wrong password"):
        load_key(keystores[1], secrets[0])  # node-1's password does not open node-2's key


def test_the_approver_key_lives_outside_the_home_with_its_own_password(tmp_path: Path) -> None:
    outside = tmp_path / "safe"
    outside.mkdir(mode=0o700)
    secret = outside / "approver.pw"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"the approver's own secret")
    os.close(fd)
    settings = load_settings(
        home=tmp_path / "home",
        approver_keystore=outside / "approver.json",
        approver_password_file=secret,
    )
    stack = Stack(settings)
    key = stack.approver_key()
    assert (outside / "approver.json").exists()
    assert not (tmp_path / "home" / "keys" / "approver.json").exists()
    assert load_key(outside / "approver.json", "the approver's own secret") == key
    node = stack.node_keystores()[0]
    with pytest.raises(KeystoreError):
        load_key(node, "the approver's own secret")


def test_a_password_file_others_can_read_is_refused_naming_the_fix(tmp_path: Path) -> None:
    stack = Stack(load_settings(home=tmp_path / "home"))
    path = stack.node_keystores()[0]
    password_file(path).chmod(0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        stack.key_password("node_1", path)


def test_a_per_key_variable_overrides_that_keys_file_only(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", key_passwords={"node_2": "two"})
    stack = Stack(settings)
    keystores = stack.node_keystores()
    load_key(keystores[1], "two")
    assert not password_file(keystores[1]).exists()
    assert password_file(keystores[0]).exists()


@pytest.mark.integration
@pytest.mark.slow
def test_nodes_start_with_their_own_passwords_and_no_shared_secret(
    env: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]
    home = tmp_path_factory.mktemp("own-passwords")
    copy_cache(env.settings.home / "cache", home)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")} | {
        "VOUCH_HOME": str(home),
        "VOUCH_RPC_URL": env.chain.url,
        "COLUMNS": "220",
    }
    try:
        up = vouch(environ, "don", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        status = vouch(environ, "don", "status")
        assert status.returncode == 0, status.stdout + status.stderr
        keys = sorted((home / "don" / "keys").glob("*.password"))
        assert len(keys) == 4
        assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)
        approver = home / "keys" / "approver.password"
        assert stat.S_IMODE(approver.stat().st_mode) == 0o600
    finally:
        vouch(environ, "don", "down")
        revert(env.w3, snapshot)
