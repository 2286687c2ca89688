"""Encrypted keys: eth-account keystore files (scrypt), never plaintext keys in config.

One secret per key: each keystore ``NAME.json`` has its own password, by
default in its own 0600 file ``NAME.password`` next to it (``password_file``;
created with a random password on first use by ``ensure_password_file``;
``read_password(..., private=True)`` refuses it once group or others may read it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from vouch.verifier._canonical import keccak
from vouch.verifier._types import to_checksum

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
    from eth_account import Account  # creating keys is rare: a node only decrypts

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
    return to_checksum(address if address.startswith("0x") else "0x" + address)


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
        return _decrypt(data, password)
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


def _decrypt(data: Any, password: str) -> bytes:
    """A Web3 Secret Storage v3 keystore decrypted (the format eth-account writes).

    scrypt or PBKDF2-HMAC-SHA256 derive the key (hashlib), the MAC
    keccak256(key[16:32] || ciphertext) is checked in constant time, then
    AES-128-CTR decrypts. Any other kdf or cipher goes to eth-account, which a
    node process then imports (0.7 CPU-s: why this path exists).

    Raises:
        ValueError: a wrong password (MAC mismatch) or a malformed keystore.
    """
    try:
        crypto = data.get("crypto") or data["Crypto"]
        kdf, params = crypto["kdf"], crypto["kdfparams"]
        cipher = crypto["cipher"]
        text = bytes.fromhex(crypto["ciphertext"])
        iv = bytes.fromhex(crypto["cipherparams"]["iv"])
        mac = bytes.fromhex(crypto["mac"])
        salt = bytes.fromhex(params["salt"])
        length = int(params["dklen"])
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed keystore: {exc}") from None
    if cipher != "aes-128-ctr" or kdf not in ("scrypt", "pbkdf2"):
        from eth_account import Account

        return bytes(Account.decrypt(data, password))
    secret = password.encode("utf-8")
    if kdf == "scrypt":
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
        derived = hashlib.scrypt(
            secret, salt=salt, n=n, r=r, p=p, dklen=length, maxmem=128 * r * n * p + 2**24
        )
    else:
        if params.get("prf", "hmac-sha256") != "hmac-sha256":
            raise ValueError(f"unsupported pbkdf2 prf {params.get('prf')!r}")
        derived = hashlib.pbkdf2_hmac("sha256", secret, salt, int(params["c"]), length)
    if not hmac.compare_digest(keccak(derived[16:32] + text), mac):
        raise ValueError("MAC mismatch")
    from Crypto.Cipher import AES  # pycryptodome (eth-account's own dependency)
    from Crypto.Util import Counter

    counter = Counter.new(128, initial_value=int.from_bytes(iv, "big"))
    return bytes(AES.new(derived[:16], AES.MODE_CTR, counter=counter).decrypt(text))
