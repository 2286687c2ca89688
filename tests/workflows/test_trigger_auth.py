"""The http trigger's authentication on its own: bearer parsing and HMAC-signed requests."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from vouch._errors import VouchError
from vouch._workflow_http import MAX_SKEW, check_signature, trigger_secret
from vouch.cre_adapters._http_trigger import bearer_token

KEY = "k3y"
BODY = b'{"price": 1}'


def sign(stamp: str, body: bytes = BODY, key: str = KEY) -> dict[str, str]:
    mac = hmac.new(key.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"x-vouch-timestamp": stamp, "x-vouch-signature": mac}


def test_only_the_bearer_scheme_carries_a_token() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("abc") == ""  # a bare token is no bearer token
    assert bearer_token("Basic abc") == ""
    assert bearer_token("") == ""


def test_a_signed_request_is_accepted_once_within_the_window() -> None:
    seen: set[str] = set()
    assert check_signature(KEY, sign("1000"), BODY, 1000.0, seen) is None
    assert "replay" in (check_signature(KEY, sign("1000"), BODY, 1000.0, seen) or "")
    assert "does not match" in (check_signature(KEY, sign("1001"), BODY + b" ", 1001.0, seen) or "")
    assert "does not match" in (
        check_signature(KEY, sign("1002", key="x"), BODY, 1002.0, seen) or ""
    )
    stale = check_signature(KEY, sign("1000"), BODY, 1001.0 + MAX_SKEW, set())
    assert stale is not None and "s off" in stale
    assert "missing" in (check_signature(KEY, {}, BODY, 1000.0, set()) or "")
    assert "unix seconds" in (check_signature(KEY, sign("soon"), BODY, 1000.0, set()) or "")


def test_the_triggers_secret_comes_from_the_environment_or_the_stores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VOUCH_SECRET_PUSH", raising=False)
    assert trigger_secret("PUSH", lambda: [{}, {"PUSH": "from-store"}]) == "from-store"
    monkeypatch.setenv("VOUCH_SECRET_PUSH", "from-env")
    assert trigger_secret("PUSH", list) == "from-env"
    monkeypatch.delenv("VOUCH_SECRET_PUSH")
    with pytest.raises(VouchError, match="vouch secrets set PUSH"):
        trigger_secret("PUSH", lambda: [{}])
