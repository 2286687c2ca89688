"""Encrypted keys: eth-account keystore files (scrypt), never plaintext keys in config.

One secret per key: each keystore ``NAME.json`` has its own password, by
default in its own 0600 file ``NAME.password`` next to it (``password_file``;
created with a random password on first use by ``ensure_password_file``;
``read_password(..., private=True)`` refuses it once group or others may read it).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

from eth_account import Account
from eth_utils import to_checksum_address

from ._errors import KeystoreError


def create_keystore(path: Path, password: str, scrypt_n: int | None = None) -> str:
    """Create a new random key, encrypt it into ``path`` (mode 0600) and return its address.

    Args:
        path: where the keystore JSON is written; must not exist yet.
        password: the keystore password.
        scrypt_n: scrypt cost; None for eth-account's default (2**18). Lower only
            for throwaway keys (benchmarks), where start-up time matters more.

    Raises:
        KeystoreError: if ``path`` already exists.
    """
    if path.exists():
        raise KeystoreError(f"keystore {path} already exists; remove it or load it instead")
    account = Account.create()
    payload = Account.encrypt(account.key, password, kdf="scrypt", iterations=scrypt_n)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle)
    return str(account.address)


def keystore_address(path: Path) -> str:
    """Read the address stored in a keystore file without decrypting it."""
    try:
        data = json.loads(path.read_text())
        return _checksum(str(data["address"]))
    except (OSError, ValueError, KeyError) as exc:
        raise KeystoreError(f"cannot read keystore {path}: {exc}") from exc


def _checksum(address: str) -> str:
    return str(to_checksum_address(address if address.startswith("0x") else "0x" + address))


def load_key(path: Path, password: str) -> bytes:
    """Decrypt a keystore file and return the 32-byte private key.

    Raises:
        KeystoreError: if the file is missing or unreadable, or the password is wrong.
    """
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise KeystoreError(f"cannot read keystore {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeystoreError(f"keystore {path} is not valid JSON") from exc
    try:
        return bytes(Account.decrypt(data, password))
    except ValueError as exc:
        raise KeystoreError(
            f"cannot decrypt keystore {path}: wrong password (each key has its own: "
            f"{password_file(path)}, VOUCH_KEY_PASSWORDS__<KEY>, or VOUCH_KEYSTORE_PASSWORD "
            "if all keys share one)"
        ) from exc


def read_password(
    password_file: Path | None, env_value: str | None, *, private: bool = False
) -> str:
    """Return the keystore password from an env value or a password file.

    With ``private`` a file that group or others may access is refused (a
    key's own password file, which vouch made 0600).

    Raises:
        KeystoreError: if neither is given, the file cannot be read, or (private) is not 0600.
    """
    if env_value:
        return env_value
    if password_file is None:
        raise KeystoreError(
            "no keystore password: give the key's own password file (--password-file, "
            "<keystore>.password) or its VOUCH_KEY_PASSWORDS__<KEY> variable"
        )
    try:
        mode = password_file.stat().st_mode
        if private and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeystoreError(
                f"password file {password_file} is readable by others (mode "
                f"{stat.S_IMODE(mode):o}): run `chmod 600 {password_file}`"
            )
        return password_file.read_text().strip()
    except OSError as exc:
        raise KeystoreError(f"cannot read password file {password_file}: {exc.strerror}") from exc


def password_file(keystore: Path) -> Path:
    """The key's own password file: ``NAME.password`` next to ``NAME.json``."""
    return keystore.with_suffix(".password")


def ensure_password_file(path: Path) -> Path:
    """Create ``path`` (0600) holding a new random password unless it exists; return it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path
