"""Opt-in pytest plugin: where was the socket made that the garbage collector found open?

``filterwarnings = error`` turns an unclosed socket into a failure of whichever test is
running when the collector frees it, often long after and far from the code that leaked
it. With this plugin every asyncio socket transport remembers the test and the stack that
made it; one freed while still open is written, with both, to ``VOUCH_SOCKET_ORIGINS``
(default ``socket-origins.txt``)::

    .venv/bin/python -m pytest -p tests.socket_origins

It found the TLS handshake that a finished round cancelled (httpcore left its socket open).
"""

from __future__ import annotations

import os
import traceback
from asyncio import selector_events
from typing import Any

import pytest

_current = {"test": "<collection>"}
_made = selector_events._SelectorTransport.__init__
_freed = selector_events._SelectorTransport.__del__


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    _made(self, *args, **kwargs)
    try:
        ends = f"{self._sock.getsockname()} -> {self._sock.getpeername()}"
    except OSError:
        ends = "(not connected)"
    self._vouch_origin = (_current["test"], ends, traceback.format_stack(limit=30))


def _del(self: Any) -> None:
    if getattr(self, "_sock", None) is not None:
        test, ends, stack = getattr(self, "_vouch_origin", ("?", "?", []))
        path = os.environ.get("VOUCH_SOCKET_ORIGINS", "socket-origins.txt")
        frames = (f for f in stack if "/_pytest/" not in f and "/pluggy/" not in f)
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"=== open socket {ends}\nmade in {test}\nfreed in {_current['test']}\n")
            out.write("".join(frames))
    _freed(self)


selector_events._SelectorTransport.__init__ = _init  # type: ignore[method-assign]
selector_events._SelectorTransport.__del__ = _del  # type: ignore[method-assign]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _current["test"] = item.nodeid
