"""The HTTP trigger: ``POST /trigger`` runs one execution and answers with its outcome.

Guarded like a node's ``/admin``: loopback clients only, ``Authorization:
Bearer <token>`` from a 0600 file. The body is validated by the workflow's
pydantic model (422 naming each bad field); one execution runs at a time; a
``CreError`` of the execution is a 502 naming it; after ``runs`` firings the
server answers 503 and stops.

    401  wrong or missing token      403  not a loopback client
    422  the body does not validate, or asks for what the workflow cannot do (not a firing)
    502  the execution failed (error, detail; a firing)      503  max firings reached
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ._errors import ConfigError, CreError
from ._spec import HttpTrigger

Fire = Callable[[Any], Awaitable[dict[str, Any]]]
EventSink = Callable[[str, dict[str, Any]], None]
LOOPBACK = ("127.0.0.1", "::1")


class FeedTriggerBody(BaseModel):
    """A feed workflow's request: which of its feeds to run (None: all of them)."""

    model_config = ConfigDict(extra="forbid")

    feeds: list[str] | None = None


def trigger_token(path: Path) -> str:
    """The bearer token in ``path``, created (0600, random) when the file does not exist.

    Raises:
        ConfigError: the file is unreadable, empty, or readable by others.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    try:
        mode, token = path.stat().st_mode & 0o077, path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the trigger token {path}: {exc.strerror}") from None
    if mode:
        raise ConfigError(f"trigger token {path} is readable by others; chmod 600 {path}")
    if not token:
        raise ConfigError(f"trigger token {path} is empty")
    return token


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; "" for any other form.

    A bare token (no scheme) or another scheme is no bearer token: refused, not read as one.
    """
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class HttpTriggerServer:
    """Serves ``POST /trigger`` for one workflow until ``trigger.runs`` executions have run.

    Args:
        trigger: host, port and firings.
        token: the bearer token clients must send.
        body: the pydantic model of a request body.
        fire: runs one execution for a validated body; returns its outcome (JSON-able).
        on_event: progress output (``listening`` with the URL, ``fired``, ``refused``).
        failures: the errors of an execution answered as 502 (a ``ConfigError`` is a 422).
    """

    def __init__(
        self,
        trigger: HttpTrigger,
        token: str,
        body: type[BaseModel],
        fire: Fire,
        on_event: EventSink,
        failures: tuple[type[Exception], ...] = (CreError,),
    ) -> None:
        self.failures = failures
        self.trigger = trigger
        self.token = token
        self.body = body
        self.fire = fire
        self.emit = on_event
        self.outcomes: list[dict[str, Any]] = []
        self._busy = asyncio.Lock()
        self._server: Any = None

    async def serve(self) -> list[dict[str, Any]]:
        """Serve until ``runs`` executions are done; return their outcomes (failed ones included)."""
        import uvicorn

        config = uvicorn.Config(
            self.app(),
            host=self.trigger.host,
            port=self.trigger.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # the CLI's Ctrl-C stays the CLI's
        announce = asyncio.create_task(self._announce())
        try:
            await self._server.serve()
        finally:
            announce.cancel()
        if not self._server.started:
            raise ConfigError(
                f"the http trigger could not listen on {self.trigger.host}:{self.trigger.port}"
            )
        return self.outcomes

    async def _announce(self) -> None:
        while not self._server.started:
            await asyncio.sleep(0.02)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/trigger"
        self.emit("listening", {"url": url, "runs": self.trigger.runs})

    def app(self) -> Any:
        """The ASGI app (Starlette): ``POST /trigger`` only."""
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def trigger(request: Any) -> JSONResponse:
            status, answer = await self._handle(request)
            return JSONResponse(answer, status_code=status)

        return Starlette(routes=[Route("/trigger", trigger, methods=["POST"])])

    async def _handle(self, request: Any) -> tuple[int, dict[str, Any]]:
        refused = self._refusal(request)
        if refused is not None:
            self.emit("refused", {"status": refused[0], **refused[1]})
            return refused
        try:
            body = self.body.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            problems = [
                {"field": ".".join(str(p) for p in e["loc"]) or "body", "problem": e["msg"]}
                for e in exc.errors()
            ]
            return 422, {"error": "invalid request body", "problems": problems}
        async with self._busy:
            if len(self.outcomes) >= self.trigger.runs:
                return self._exhausted()
            return await self._run(body)

    def _refusal(self, request: Any) -> tuple[int, dict[str, Any]] | None:
        host = request.client.host if request.client else ""
        if host not in LOOPBACK:
            return 403, {"error": f"the trigger is only served to loopback, not {host}"}
        given = bearer_token(request.headers.get("authorization", ""))
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return 401, {
                "error": "wrong or missing token (Authorization: Bearer <token from the "
                "trigger's token_file>)"
            }
        if len(self.outcomes) >= self.trigger.runs:
            return self._exhausted()
        return None

    def _exhausted(self) -> tuple[int, dict[str, Any]]:
        return 503, {"error": f"max firings reached ({self.trigger.runs}); the server stops"}

    async def _run(self, body: BaseModel) -> tuple[int, dict[str, Any]]:
        try:
            outcome = await self.fire(body)
            status = 200
        except ConfigError as exc:  # the request asks for something this workflow cannot do
            return 422, {"error": str(exc)}
        except self.failures as exc:
            outcome = {"status": "failed", "error": type(exc).__name__, "detail": str(exc)}
            status = 502
        self.outcomes.append(outcome)
        self.emit("fired", {"firing": len(self.outcomes), "status": outcome.get("status")})
        if len(self.outcomes) >= self.trigger.runs:
            self._server.should_exit = True
        return status, outcome


__all__ = ["FeedTriggerBody", "HttpTriggerServer", "bearer_token", "trigger_token"]
