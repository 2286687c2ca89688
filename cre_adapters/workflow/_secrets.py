"""Each node's encrypted secret store: ``<keystore>.secrets`` beside its keystore.

A secret is encrypted (AES-256-GCM) under a key derived from the node's own
signing key, so only that node (and whoever holds its keystore password)
reads it. Callbacks reference secrets by name (``{{secrets.NAME}}`` in an
HTTP request); the value is substituted inside the node, just before the
request leaves, and never enters a signed observation, a log entry, a
report or an error message (errors have it replaced by ``***``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from Crypto.Cipher import AES

from vouch.verifier import keccak

from ._errors import WorkflowError

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_VALUE = 64 * 1024


class SecretError(WorkflowError):
    """A secret's name or value is not acceptable, or a store cannot be read."""


def secrets_file(keystore: Path) -> Path:
    """Where the node whose keystore is ``keystore`` keeps its secrets."""
    return keystore.with_name(keystore.name + ".secrets")


def _key(private_key: bytes) -> bytes:
    return keccak(b"vouch.secrets.v1" + private_key)


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SecretError(f"secret store {path} is unreadable: {type(exc).__name__}") from None
    stored = data.get("secrets") if isinstance(data, dict) else None
    if not isinstance(stored, dict):
        raise SecretError(f"secret store {path} is not a vouch secret store")
    return stored


def set_secret(keystore: Path, private_key: bytes, name: str, value: str) -> Path:
    """Encrypt ``value`` as secret ``name`` in the node's store (written atomically, 0600)."""
    if not NAME.match(name):
        raise SecretError(f"secret name {name!r}: a letter or _ first, then letters, digits, _")
    if not value or len(value.encode()) > MAX_VALUE:
        raise SecretError(f"secret {name}: the value must be 1..{MAX_VALUE} bytes")
    path = secrets_file(keystore)
    stored = _read(path)
    cipher = AES.new(_key(private_key), AES.MODE_GCM)
    cipher.update(name.encode())
    ciphertext, tag = cipher.encrypt_and_digest(value.encode())
    stored[name] = {"nonce": cipher.nonce.hex(), "ct": ciphertext.hex(), "tag": tag.hex()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"version": 1, "secrets": stored}, out)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_secrets(keystore: Path, private_key: bytes) -> dict[str, str]:
    """Every secret of the node's store, decrypted (a tampered entry is refused, named)."""
    out: dict[str, str] = {}
    for name, entry in _read(secrets_file(keystore)).items():
        try:
            cipher = AES.new(_key(private_key), AES.MODE_GCM, nonce=bytes.fromhex(entry["nonce"]))
            cipher.update(name.encode())
            plain = cipher.decrypt_and_verify(
                bytes.fromhex(entry["ct"]), bytes.fromhex(entry["tag"])
            )
        except (KeyError, ValueError, TypeError):
            raise SecretError(
                f"secret {name} in {secrets_file(keystore)} does not decrypt with this node's key"
            ) from None
        out[name] = plain.decode()
    return out


def secret_names(keystore: Path) -> list[str]:
    """The names in the node's store (values stay encrypted)."""
    return sorted(_read(secrets_file(keystore)))


def loader(keystore: Path, private_key: bytes) -> Callable[[], dict[str, str]]:
    """Reads the store afresh on each call (``vouch secrets set`` needs no node restart)."""
    return lambda: load_secrets(keystore, private_key)
