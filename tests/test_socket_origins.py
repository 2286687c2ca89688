"""The opt-in socket-origins plugin names the test and the line that leaked a socket."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LEAKY = """
import asyncio
import gc


def test_leaks_a_socket():
    async def go():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await asyncio.open_connection("127.0.0.1", port)  # neither side is ever closed
        server.close()

    asyncio.run(go())


def test_runs_later():
    gc.collect()
"""


def test_an_open_socket_freed_later_is_traced_to_the_test_that_made_it(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    out = tmp_path / "origins.txt"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.socket_origins",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::pytest.PytestUnraisableExceptionWarning",
            str(tmp_path / "test_leaky.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "VOUCH_SOCKET_ORIGINS": str(out)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    report = out.read_text()
    # test ids are relative to a rootdir that depends on where the temp dir is
    assert re.search(r"^made in \S*test_leaky\.py::test_leaks_a_socket$", report, re.M)
    assert re.search(r"^freed in \S*test_leaky\.py::test_runs_later$", report, re.M)
    assert 'test_leaky.py", line 13, in test_leaks_a_socket' in report  # the leaking line's frame
