"""A node decrypts its keystore without eth-account: the same key, the same refusals.

The node's own v3 decryptor (hashlib's scrypt/PBKDF2, keccak MAC, AES-128-CTR)
keeps eth-account's 0.7 CPU-s of imports out of every node process; these
tests hold it to eth-account's answers on keystores eth-account wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from vouch.cre_adapters import KeystoreError, load_key
from vouch.cre_adapters._keystore import _decrypt


@pytest.mark.parametrize(
    ("kdf", "iterations"), [("scrypt", 2**10), ("scrypt", 2**14), ("pbkdf2", 1000)]
)
def test_the_native_decryptor_returns_eth_accounts_key(kdf: str, iterations: int) -> None:
    account = Account.create()
    stored = Account.encrypt(account.key, "pw", kdf=kdf, iterations=iterations)
    assert _decrypt(stored, "pw") == bytes(Account.decrypt(stored, "pw")) == bytes(account.key)


def test_a_wrong_password_or_an_edited_ciphertext_is_refused(tmp_path: Path) -> None:
    account = Account.create()
    stored = Account.encrypt(account.key, "right", kdf="scrypt", iterations=2**10)
    path = tmp_path / "node-1.json"
    path.write_text(json.dumps(stored))
    with pytest.raises(KeystoreError, match="wrong password"):
        load_key(path, "wrong")
    edited = json.loads(json.dumps(stored))
    text = edited["crypto"]["ciphertext"]
    edited["crypto"]["ciphertext"] = ("0" if text[0] != "0" else "1") + text[1:]
    with pytest.raises(ValueError, match="MAC mismatch"):
        _decrypt(edited, "right")
    with pytest.raises(ValueError, match="malformed keystore"):
        _decrypt({"crypto": {"kdf": "scrypt"}}, "right")
    assert load_key(path, "right") == bytes(account.key)
