"""What the CLI says when the user presses Ctrl-C: every hint registered by what was running.

Whoever runs something that Ctrl-C leaves half done (a settlement run, a
workflow) wraps it in ``interrupt_hint`` with a line saying what was paused and
which command resumes it; ``vouch.cli.main`` prints the hints of the innermost
work first, then exits 130 without a traceback.

    with interrupt_hint(lambda: f"run {run_id} paused at step {step}: `vouch runs resume {run_id}`"):
        ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Hint = str | Callable[[], str | None]
_hints: list[Hint] = []
_lock = threading.Lock()


@contextmanager
def interrupt_hint(hint: Hint) -> Iterator[None]:
    """Register ``hint`` (a line, or a function giving one or None) while the block runs."""
    with _lock:
        _hints.append(hint)
    try:
        yield
    finally:
        with _lock:
            if hint in _hints:
                _hints.remove(hint)


def interrupt_hints() -> list[str]:
    """The registered hints, innermost first; a hint function that fails is skipped."""
    with _lock:
        hints = list(reversed(_hints))
    lines = []
    for hint in hints:
        try:
            line = hint() if callable(hint) else hint
        except Exception:  # noqa: BLE001 - a hint must never turn Ctrl-C into a traceback
            line = None
        if line:
            lines.append(line)
    return lines


__all__ = ["Hint", "interrupt_hint", "interrupt_hints"]
