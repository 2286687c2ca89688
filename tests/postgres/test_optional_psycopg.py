"""psycopg is optional: the verifier (and vouch) import without it and say how to get it for a URL."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED = textwrap.dedent(
    """
    import sys
    sys.modules["psycopg"] = None  # as if it were not installed
    import vouch.verifier, vouch.agents
    from vouch.verifier import open_log, LogIntegrityError
    from vouch.agents import open_checkpoints, CheckpointError
    log = open_log(sys.argv[1] + "/log.db")  # SQLite needs nothing more
    log.append("0x01", "proposal", {})
    try:
        open_log("postgresql://auditor:pw@db.example/log")
    except LogIntegrityError as exc:
        print("LOG:", exc)
    try:
        open_checkpoints("postgresql://worker@db.example/runs")
    except CheckpointError as exc:
        print("RUNS:", exc)
    """
)


def test_verifier_imports_no_psycopg_until_a_url_is_opened() -> None:
    code = "import sys, vouch.verifier, vouch.agents, vouch; print('psycopg' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_without_psycopg_a_postgres_url_says_what_to_install(tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    log_line, runs_line = done.stdout.strip().splitlines()
    assert "pip install 'psycopg[binary]" in log_line and "vouch-verifier[postgres]" in log_line
    assert "pw@" not in log_line and "auditor:***@db.example/log" in log_line
    assert "pip install 'vouch[postgres]'" in runs_line


def test_the_standalone_verifier_cli_refuses_a_url_without_psycopg(tmp_path: object) -> None:
    code = (
        "import sys, runpy; sys.modules['psycopg'] = None; "
        "sys.argv = ['verifier', 'export', 'postgresql://a:pw@h/db', 'x.jsonl']; "
        "runpy.run_module('vouch.verifier', run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "needs psycopg" in done.stdout + done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
