"""What a user does: `vouch demo settlement`, then `vouch audit`, then an attacker edits the log."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import PASSWORD, copy_cache

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def vouch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vouch", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, env
) -> Iterator[tuple[dict[str, str], Path, str]]:
    home = tmp_path_factory.mktemp("demo-home")
    copy_cache(env.settings.home / "cache", home)
    environ = {
        **os.environ,
        "VOUCH_HOME": str(home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "COLUMNS": "200",
    }
    result = vouch(environ, "demo", "settlement")
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield environ, home, result.stdout
    finally:
        vouch(environ, "down")


def test_demo_settles_and_prints_a_summary(demo) -> None:
    _, home, out = demo
    for needle in (
        "settled",
        "attested price",
        "signers",
        "tx hash",
        "gas used",
        "log entry",
        "vouch audit",
    ):
        assert needle in out
    assert (home / "attestations.db").exists()
    assert list((home / "deployments").glob("*.json"))


def test_audit_passes_on_the_demo_log(demo) -> None:
    environ, _, _ = demo
    result = vouch(environ, "audit")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def tampered(home: Path, tmp_path: Path, *sql: str) -> Path:
    copy = tmp_path / "tampered.db"
    shutil.copy(home / "attestations.db", copy)
    with sqlite3.connect(copy) as db:
        for statement in sql:
            db.execute(statement)
    return copy


@pytest.mark.parametrize(
    ("sql", "entry"),
    [
        (
            ["UPDATE entries SET payload = replace(payload, 'settled', 'settleD') WHERE seq = 5"],
            "5",
        ),
        (["UPDATE entries SET kind = 'consensuz' WHERE seq = 3"], "3"),
        (["UPDATE entries SET created_at = created_at + 1 WHERE seq = 2"], "2"),
        (["DELETE FROM entries WHERE seq = 3"], "4"),
        (
            [
                "UPDATE entries SET seq = -2 WHERE seq = 2",
                "UPDATE entries SET seq = 2 WHERE seq = 3",
                "UPDATE entries SET seq = 3 WHERE seq = -2",
            ],
            "2",
        ),
    ],
    ids=["edit-payload", "edit-kind", "edit-timestamp", "delete", "reorder"],
)
def test_audit_fails_and_names_the_entry_when_the_log_is_tampered(
    demo, tmp_path: Path, sql, entry
) -> None:
    environ, home, _ = demo
    copy = tampered(home, tmp_path, *sql)
    result = vouch(environ, "audit", "--log", str(copy))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"#{entry}" in result.stdout


def test_audit_without_a_log_cannot_audit(demo, tmp_path: Path) -> None:
    environ, _, _ = demo
    result = vouch(environ, "audit", "--log", str(tmp_path / "missing.db"))
    assert result.returncode == 2
    assert "missing.db" in result.stdout + result.stderr


def execution_of(home: Path, kind: str = "submission") -> str:
    with sqlite3.connect(home / "attestations.db") as db:
        return str(
            db.execute("SELECT execution_id FROM entries WHERE kind = ?", (kind,)).fetchone()[0]
        )


def test_replay_recomputes_the_decision(demo) -> None:
    environ, home, _ = demo
    result = vouch(environ, "replay", execution_of(home)[:12])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recomputes exactly" in result.stdout


def test_replay_shows_where_a_replaced_observation_diverges(demo, tmp_path: Path) -> None:
    environ, home, _ = demo
    copy = tampered(home, tmp_path)
    with sqlite3.connect(copy) as db:
        text = db.execute("SELECT payload FROM entries WHERE kind = 'observations'").fetchone()[0]
        doc = json.loads(text)
        for o in doc["observations"]:
            o["observation"]["value"] = 1  # every node "said" 1
        db.execute("UPDATE entries SET payload = ? WHERE kind = 'observations'", (json.dumps(doc),))
    result = vouch(environ, "replay", execution_of(home), "--log", str(copy))
    assert result.returncode == 1
    assert "does not carry its signature" in result.stdout
    assert "recomputed median 1" in result.stdout


def test_exported_log_imports_with_the_same_hashes_and_audits_clean(demo, tmp_path: Path) -> None:
    environ, home, _ = demo
    assert vouch(environ, "log", "export", str(tmp_path / "log.jsonl")).returncode == 0
    imported = vouch(
        environ, "log", "import", str(tmp_path / "log.jsonl"), "--into", str(tmp_path / "copy.db")
    )
    assert imported.returncode == 0, imported.stderr
    result = vouch(environ, "audit", "--log", str(tmp_path / "copy.db"))
    assert result.returncode == 0, result.stdout
