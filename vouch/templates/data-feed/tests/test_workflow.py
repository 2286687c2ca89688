"""__NAME__'s own tests: the workflow on a DON of 4 in-process nodes, and the receiver under forge."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vouch._resources import toolchain as find_toolchain
from vouch.cre_adapters.workflow import ConsensusRefused, simulate_module
from vouch.cre_adapters.workflow._project import forge_test_command

PROJECT = Path(__file__).resolve().parents[1]
RECEIVER = "0x000000000000000000000000000000000000bEEF"


@contextmanager
def price_api(prices: list[int]) -> Iterator[str]:
    """A local price API: the k-th request gets prices[k]."""
    served: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(1)
            body = json.dumps({"price": prices[(len(served) - 1) % len(prices)]}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/price"
    finally:
        server.shutdown()
        server.server_close()


def test_the_dons_median_is_reported() -> None:
    prices = [3000_00000000, 3001_00000000, 2999_00000000, 3002_00000000]
    with price_api(prices) as url:
        result = simulate_module(PROJECT / "workflow.py", {"url": url, "receiver": RECEIVER})
    assert result.report is not None
    assert result.report["abi_types"] == ["uint256"]
    assert result.report["values"] == [3000_00000000]  # the lower median of the four
    assert result.report["receiver"].lower() == RECEIVER.lower()


def test_sources_that_disagree_are_refused() -> None:
    with (
        price_api([1000_00000000, 1000_00000000, 2000_00000000, 2000_00000000]) as url,
        pytest.raises(ConsensusRefused, match="disagree beyond the tolerance"),
    ):
        simulate_module(PROJECT / "workflow.py", {"url": url, "receiver": RECEIVER})


def test_the_receiver_under_forge() -> None:
    done = subprocess.run(
        forge_test_command(find_toolchain()),
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
