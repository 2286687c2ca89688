"""Start processes that outlive the caller (anvil, nodes), and watch them by pid."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def spawn_detached(
    cmd: Sequence[str], log_file: Path | None, env: Mapping[str, str] | None = None
) -> int:
    """Start ``cmd`` in its own session with output appended to ``log_file``; return its pid.

    ``posix_spawn`` with ``setsid`` rather than ``subprocess.Popen``: the child
    is meant to outlive this process, so there is no Popen object to reap.
    """
    program = shutil.which(cmd[0]) or cmd[0]
    target = os.open(log_file or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        actions = [
            (os.POSIX_SPAWN_DUP2, null, 0),
            (os.POSIX_SPAWN_DUP2, target, 1),
            (os.POSIX_SPAWN_DUP2, target, 2),
        ]
        return os.posix_spawn(
            program, list(cmd), dict(env or os.environ), file_actions=actions, setsid=True
        )
    finally:
        os.close(target)
        os.close(null)


def exit_code(pid: int) -> int | None:
    """The exit code if ``pid`` (our child) has exited, else None. Reaps it."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None if alive(pid) else 0
    return os.waitstatus_to_exitcode(status) if done == pid else None


def alive(pid: int) -> bool:
    """True while ``pid`` runs (reaping it first if it is our exited child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def terminate(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. False if it was not running."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True


def terminate_all(pids: Sequence[int], timeout: float = 10.0) -> list[int]:
    """SIGTERM every pid at once, wait up to ``timeout`` for all, SIGKILL the rest.

    Returns the pids that were running. Stopping n nodes takes one grace
    period, not n.
    """
    running = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            running.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in running):
        time.sleep(0.05)
    for pid in running:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    return running
