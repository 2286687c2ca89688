"""The node's log: one JSON object per line on the node process's stderr."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any, TextIO

log = logging.getLogger("vouch.node")


class _Events:
    """Where ``event`` writes: the node process's stderr once ``serve`` configured it.

    A protocol answer logs one event, so an event is one ``json.dumps`` and one
    write (about 8 us), not a trip through ``logging`` (about 40 us). The line
    is the one ``JsonFormatter`` writes for warnings.
    """

    sink: TextIO | None = None
    node = ""


def event(name: str, **fields: Any) -> None:
    """Log one structured event (a JSON object per line in the node's log)."""
    sink = _Events.sink
    if sink is None:  # not a node process (tests, embedding): ordinary logging
        log.info(name, extra={"fields": fields})
        return
    line = {"ts": round(time.time(), 3), "node": _Events.node, "level": "info", "event": name}
    sink.write(json.dumps(_with_fields(line, fields), default=str) + "\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, node, level, event and the event's fields."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        line = {
            "ts": round(record.created, 3),
            "node": self.node,
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        return json.dumps(_with_fields(line, getattr(record, "fields", {})), default=str)


def _with_fields(line: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The line's own keys first; an event's fields after them, never replacing one."""
    return {**line, **{k: v for k, v in fields.items() if k not in line}}


def configure_logging(name: str) -> None:
    """Every line of the node's log is JSON: its own events, and the HTTP server's messages."""
    _Events.sink, _Events.node = sys.stderr, name
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(name))
    loggers = [(log, logging.INFO)] + [
        (logging.getLogger(name), logging.WARNING) for name in ("uvicorn", "asyncio")
    ]
    for logger, level in loggers:
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False


def exit_process(code: int, after: float = 0.0) -> None:
    """End this node process (a crash or a kill), only in a node process: never a test's."""
    if _Events.sink is None:
        return
    sys.stderr.flush()
    if after <= 0:
        os._exit(code)
    asyncio.get_running_loop().call_later(after, os._exit, code)


__all__ = ["JsonFormatter", "configure_logging", "event", "exit_process", "log"]
