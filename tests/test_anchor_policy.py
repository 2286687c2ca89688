"""AnchorPolicy.due and its settings: N entries or T seconds, whichever comes first."""

from __future__ import annotations

from pathlib import Path

import pytest

from vouch import load_settings
from vouch._anchor import AnchorPolicy
from vouch._interrupt import interrupt_hint, interrupt_hints


def test_due_after_n_entries_or_t_seconds_whichever_comes_first() -> None:
    now = 1_000_000.0
    policy = AnchorPolicy(every=5, seconds=30, clock=lambda: now)
    fresh = int(now * 1000)
    assert not policy.due(0, None)
    assert not policy.due(4, fresh)
    assert policy.due(5, fresh)  # N reached
    assert not policy.due(1, fresh - 29_999)
    assert policy.due(1, fresh - 30_000)  # T reached with one entry waiting
    assert not policy.due(0, fresh - 10**9)  # nothing waits: nothing to anchor


def test_the_policy_comes_from_settings_env_and_vouch_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = AnchorPolicy.from_settings(load_settings(home=tmp_path))
    assert (default.every, default.seconds) == (25, 300.0)
    monkeypatch.setenv("VOUCH_ANCHOR_EVERY", "7")
    monkeypatch.setenv("VOUCH_ANCHOR_SECONDS", "2.5")
    env = AnchorPolicy.from_settings(load_settings(home=tmp_path))
    assert (env.every, env.seconds) == (7, 2.5)
    with pytest.raises(Exception, match="anchor_seconds"):
        load_settings(home=tmp_path, anchor_seconds=0)


def test_interrupt_hints_are_innermost_first_and_never_raise() -> None:
    def broken() -> str:
        raise RuntimeError("boom")

    with interrupt_hint("outer"), interrupt_hint(broken), interrupt_hint(lambda: "inner"):
        assert interrupt_hints() == ["inner", "outer"]
    assert interrupt_hints() == []


SLEEPER = """
import sys, time
from vouch._interrupt import interrupt_hint
from vouch.cli import app, main

@app.command("sleepy")
def sleepy() -> None:
    with interrupt_hint("run R1 paused at step settle: resume it with `vouch runs resume R1`"):
        print("ready", flush=True)
        time.sleep(60)

sys.argv = ["vouch", "sleepy"]
main()
"""


ASYNC_SLEEPER = SLEEPER.replace(
    """    with interrupt_hint("run R1 paused at step settle: resume it with `vouch runs resume R1`"):
        print("ready", flush=True)
        time.sleep(60)""",
    """    import asyncio

    async def run() -> None:
        with interrupt_hint("run R1 paused at step settle: resume it with `vouch runs resume R1`"):
            print("ready", flush=True)
            await asyncio.sleep(60)

    asyncio.run(run())""",
)


@pytest.mark.parametrize("script", [SLEEPER, ASYNC_SLEEPER], ids=["sync", "asyncio"])
def test_ctrl_c_prints_the_registered_hint_and_exits_130_without_a_traceback(script: str) -> None:
    import signal
    import subprocess
    import sys

    assert "asyncio.run" in ASYNC_SLEEPER
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a background job (nohup, `make test &`) ignores SIGINT and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 130, out + err
    assert "interrupted" in err
    assert "run R1 paused at step settle: resume it with `vouch runs resume R1`" in err
    assert "Traceback" not in err + out
