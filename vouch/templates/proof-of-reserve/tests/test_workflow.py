"""__NAME__'s own tests: the receiver under forge; the workflow's HTTP half on in-process nodes."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from vouch._resources import toolchain as find_toolchain
from vouch.cre_adapters.workflow._project import forge_test_command

PROJECT = Path(__file__).resolve().parents[1]


@contextmanager
def serve(answer: dict[str, int]) -> Iterator[str]:
    """A local JSON API answering ``answer`` (an eth_call too: the supply as a uint256)."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(json.dumps(answer).encode())

        def do_POST(self) -> None:  # a minimal JSON-RPC: eth_call -> the supply
            request = json.loads(self.rfile.read(int(self.headers["content-length"])))
            result = "0x" + answer["supply"].to_bytes(32, "big").hex()
            self._reply(
                json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()
            )

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_reserves_and_supply_are_reported() -> None:
    from vouch.cre_adapters.workflow import simulate_module

    with serve({"reserves": 1_500_000, "supply": 1_000_000}) as url:
        result = simulate_module(
            PROJECT / "workflow.py",
            {
                "token": "0x00000000000000000000000000000000000000C0",
                "reserves_url": url + "/reserves",
                "receiver": "0x000000000000000000000000000000000000bEEF",
            },
            rpc_url=url,
        )
    assert result.report is not None
    assert result.report["values"] == [1_500_000, 1_000_000]


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
