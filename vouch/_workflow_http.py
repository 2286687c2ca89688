"""`vouch workflow run FILE.py` for a module whose handler is an ``http_trigger``.

``POST /trigger`` (loopback only) runs one execution on the DON's node
processes with the request's JSON object as the trigger event (what
``vouch workflow simulate --event`` passes). The request is authenticated as
the trigger declares, with the value of its secret (``VOUCH_SECRET_<NAME>`` in
this process's environment, else the nodes' stores: ``vouch secrets set NAME``):

- ``auth="bearer"``: ``Authorization: Bearer <secret>``;
- ``auth="signed"``: ``X-Vouch-Timestamp: <unix seconds>`` within 300 s and
  ``X-Vouch-Signature: hex(HMAC-SHA256(secret, timestamp + "." + body))``;
  a signature is accepted once (a replay is refused).

    401  wrong or missing token / signature, stale timestamp, replay (nothing runs, nothing is written)
    403  not a loopback client      422  the body is not a JSON object
    502  the execution failed (a firing)      503  max firings reached
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from typing import Any

from vouch.cre_adapters._http_trigger import LOOPBACK, HttpTriggerServer, bearer_token

from ._errors import VouchError

MAX_SKEW = 300  # seconds a signed request's timestamp may differ from now
SECRET_ENV = "VOUCH_SECRET_"


class ModuleEvent(dict[str, Any]):
    """A trigger event: the request's JSON object (``model_validate_json`` as the server expects)."""

    @classmethod
    def model_validate_json(cls, data: bytes) -> ModuleEvent:
        """The JSON object ``data``; raises ``ValueError`` for anything else."""
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError("the body must be a JSON object")
        return cls(value)


def trigger_secret(name: str, stores: Callable[[], list[dict[str, str]]]) -> str:
    """The value of the trigger's secret ``name``: the environment first, else the nodes' stores.

    Raises:
        VouchError: no value anywhere (naming both ways to set one).
    """
    value = os.environ.get(SECRET_ENV + name)
    if value:
        return value
    for store in stores():
        if store.get(name):
            return store[name]
    raise VouchError(
        f"the http trigger's secret {name} is not set: `vouch secrets set {name}` "
        f"(every node's store) or {SECRET_ENV}{name} in this process's environment"
    )


def check_signature(key: str, headers: Any, body: bytes, now: float, seen: set[str]) -> str | None:
    """Why a signed request is refused (None: accepted, and its signature remembered)."""
    stamp = headers.get("x-vouch-timestamp", "")
    signature = headers.get("x-vouch-signature", "").strip().lower()
    if not stamp or not signature:
        return "missing X-Vouch-Timestamp or X-Vouch-Signature"
    try:
        at = int(stamp)
    except ValueError:
        return f"X-Vouch-Timestamp {stamp[:40]!r} is not unix seconds"
    if abs(now - at) > MAX_SKEW:
        return f"X-Vouch-Timestamp is {int(now - at)} s off (at most {MAX_SKEW} s)"
    expected = hmac.new(key.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return "X-Vouch-Signature does not match HMAC-SHA256(secret, timestamp + '.' + body)"
    if signature in seen:
        return "this signed request was already used (a replay)"
    seen.add(signature)
    return None


class ModuleTriggerServer(HttpTriggerServer):
    """``HttpTriggerServer`` for a workflow module: bearer or signed, the body as the event."""

    def __init__(
        self,
        trigger: Any,
        auth: str,
        key: str,
        fire: Any,
        on_event: Any,
        failures: tuple[type[Exception], ...],
    ) -> None:
        super().__init__(trigger, key, ModuleEvent, fire, on_event, failures)  # type: ignore[arg-type]
        self.auth = auth
        self._seen: set[str] = set()

    async def _handle(self, request: Any) -> tuple[int, dict[str, Any]]:
        body = await request.body()
        refused = self._authorise(request, body)
        if refused is not None:
            self.emit("refused", {"status": refused[0], **refused[1]})
            return refused
        try:
            event = ModuleEvent.model_validate_json(body or b"{}")
        except ValueError as exc:
            return 422, {"error": f"invalid request body: {exc}"}
        async with self._busy:
            if len(self.outcomes) >= self.trigger.runs:
                return self._exhausted()
            return await self._run(event)  # type: ignore[arg-type]

    def _authorise(self, request: Any, body: bytes) -> tuple[int, dict[str, Any]] | None:
        host = request.client.host if request.client else ""
        if host not in LOOPBACK:
            return 403, {"error": f"the trigger is only served to loopback, not {host}"}
        if self.auth == "signed":
            problem = check_signature(self.token, request.headers, body, time.time(), self._seen)
            if problem is not None:
                return 401, {"error": f"bad signature: {problem}"}
        else:
            given = bearer_token(request.headers.get("authorization", ""))
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, {
                    "error": "wrong or missing token (Authorization: Bearer <the trigger's secret>)"
                }
        if len(self.outcomes) >= self.trigger.runs:
            return self._exhausted()
        return None
