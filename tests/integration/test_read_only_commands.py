"""Read-only stays read-only: after `vouch down`, no command starts a chain, a node or anything.

A real demo home (its own anvil and DON, started by `vouch demo settlement`),
then `vouch down` (which anchors the log first), then every command that only
reads, and the two that write but must not start a chain behind the user's
back: each exits as documented and leaves no process of the home running
(checked in /proc: any process whose command line names the home).
Then the chain is brought back: the audit sees every entry anchored, and
`vouch log prove` refuses an edited entry, re-hashed or not.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vouch.verifier import AttestationLog, Web3ChainReader, chain_hash
from vouch.verifier._log import unanchored_tail

from ..conftest import PASSWORD, copy_cache
from .helpers import vouch_cli as vouch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def processes_of(home: Path) -> list[str]:
    """Every live process whose command line names ``home`` (anvil's state file, a node's config)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if str(home) in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory, env) -> Iterator[tuple[dict[str, str], Path]]:
    """A home after a demo settlement and `vouch down` (no anchoring before the down)."""
    home = tmp_path_factory.mktemp("read-only-home")
    copy_cache(env.settings.home / "cache", home)
    environ = {
        **os.environ,
        "VOUCH_HOME": str(home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "VOUCH_ANCHOR_EVERY": "1000",  # nothing is anchored during the demo: `down` must do it
        "COLUMNS": "200",
    }
    try:
        demo = vouch(environ, "demo", "settlement")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        entries = AttestationLog(home / "attestations.db", readonly=True).last_seq()
        assert entries >= 6 and "anchored onchain" not in demo.stdout
        assert processes_of(home), "the demo runs an anvil and nodes of this home"
        down = vouch(environ, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"log: anchored #1..#{entries} as anchor 0" in down.stdout
        assert processes_of(home) == []
        yield environ, home
    finally:
        vouch(environ, "down")


def _execution(home: Path) -> str:
    with sqlite3.connect(home / "attestations.db") as db:
        row = db.execute("SELECT execution_id FROM entries WHERE kind = 'submission'").fetchone()
    return str(row[0])


def _run_id(home: Path) -> str:
    with sqlite3.connect(home / "runs.db") as db:
        return str(db.execute("SELECT run_id FROM runs").fetchone()[0])


NEEDS_CHAIN = [
    ("audit",),
    ("audit", "--json"),
    ("log", "prove", "1"),
    ("log", "anchor"),
    ("deploy",),
    ("chain", "status"),
    ("don", "status"),
]


@pytest.mark.parametrize("args", NEEDS_CHAIN, ids=" ".join)
def test_after_down_a_command_needing_the_chain_starts_nothing_and_exits_2_saying_how(
    stopped, args: tuple[str, ...]
) -> None:
    environ, home = stopped
    result = vouch(environ, *args)
    out = (result.stdout + result.stderr).replace("\n", " ")
    assert result.returncode == 2, out
    assert "vouch chain up" in out, out
    assert "Traceback" not in out
    assert processes_of(home) == []
    assert not (home / "chain" / "anvil.json").exists()


@pytest.mark.parametrize(
    "args",
    [
        lambda home, tmp: ("log", "export", str(tmp / "log.jsonl")),
        lambda home, tmp: ("replay", _execution(home)[:14]),
        lambda home, tmp: ("runs", "list"),
        lambda home, tmp: ("runs", "show", _run_id(home)),
    ],
    ids=["log export", "replay", "runs list", "runs show"],
)
def test_after_down_commands_reading_only_files_work_and_start_nothing(
    stopped, tmp_path: Path, args
) -> None:
    environ, home = stopped
    result = vouch(environ, *args(home, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert processes_of(home) == []
    assert not (home / "chain" / "anvil.json").exists()


def test_after_down_every_entry_is_anchored_and_prove_refuses_an_edited_entry(
    stopped, tmp_path: Path
) -> None:
    environ, home = stopped
    up = vouch(environ, "chain", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        log = AttestationLog(home / "attestations.db", readonly=True)
        manifest = json.loads(next((home / "deployments").glob("*.json")).read_text())
        from web3 import Web3

        url = json.loads((home / "chain" / "anvil.json").read_text())["url"]
        anchors = Web3ChainReader(Web3(Web3.HTTPProvider(url))).anchors(
            manifest["contracts"]["AttestationAnchor"]
        )
        tail = unanchored_tail(log, anchors)
        assert tail.count == 0 and tail.anchored_up_to == log.last_seq()

        audit = vouch(environ, "audit", "--json")
        assert audit.returncode == 0, audit.stdout + audit.stderr
        anchored = [r for r in json.loads(audit.stdout)["results"] if r["check"] == "anchored"]
        assert len(anchored) == log.last_seq() and {r["status"] for r in anchored} == {"ok"}

        good = vouch(environ, "log", "prove", "2", "--json")
        assert good.returncode == 0, good.stdout + good.stderr
        doc = json.loads(good.stdout)
        assert doc["content_matches_hash"] and doc["verified_locally"] and doc["verified_onchain"]

        # the attack: edit entry #2's payload, keep its stored hash (the old prove said "verified")
        edited = tmp_path / "edited.db"
        shutil.copy(home / "attestations.db", edited)
        with sqlite3.connect(edited) as db:
            text = db.execute("SELECT payload FROM entries WHERE seq = 2").fetchone()[0]
            payload = json.loads(text)
            payload["edited"] = 1
            db.execute(
                "UPDATE entries SET payload = ? WHERE seq = 2",
                (json.dumps(payload, sort_keys=True, separators=(",", ":")),),
            )
        bad = vouch(environ, "log", "prove", "2", "--json", "--log", str(edited))
        assert bad.returncode == 1, bad.stdout + bad.stderr
        doc = json.loads(bad.stdout)
        assert doc["content_matches_hash"] is False and doc["verified_onchain"] is False
        assert "entry #2 was edited" in bad.stderr.replace("\n", " ")

        # and re-hashed from there on: the hashes agree with the content, the anchor does not
        with sqlite3.connect(edited) as db:
            rows = db.execute(
                "SELECT seq, execution_id, kind, payload, created_at, prev_hash FROM entries "
                "WHERE seq >= 2 ORDER BY seq"
            ).fetchall()
            prev = db.execute("SELECT entry_hash FROM entries WHERE seq = 1").fetchone()[0]
            for seq, execution, kind, text, created, _ in rows:
                new = chain_hash(prev, seq, execution, kind, json.loads(text), created)
                db.execute(
                    "UPDATE entries SET prev_hash = ?, entry_hash = ? WHERE seq = ?",
                    (prev, new, seq),
                )
                prev = new
        rehashed = vouch(environ, "log", "prove", "2", "--json", "--log", str(edited))
        assert rehashed.returncode == 1, rehashed.stdout + rehashed.stderr
        doc = json.loads(rehashed.stdout)
        assert doc["content_matches_hash"] is True
        assert doc["verified_locally"] is False and doc["verified_onchain"] is False
    finally:
        assert vouch(environ, "down").returncode == 0
    assert processes_of(home) == []


def test_ctrl_c_while_the_cli_loads_exits_130_without_a_traceback(stopped) -> None:
    import signal
    import subprocess
    import sys

    environ, home = stopped
    for delay in (0.2, 0.6, 1.2):
        child = subprocess.Popen(
            [sys.executable, "-m", "vouch", "audit"],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        if child.returncode == 2:  # it finished before the signal: nothing to check
            continue
        assert child.returncode == 130, out + err
        assert "Traceback" not in err and "interrupted" in err
