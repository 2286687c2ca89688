"""A loopback JSON-RPC endpoint in front of a real chain, with a public RPC's manners.

Public RPCs hold each request for a network round trip and cap how many
blocks one eth_getLogs may span; neither exists on a local anvil. This proxy
forwards every request to the real chain and adds them: ``delay`` seconds
per HTTP request, a refusal, with the error a hosted RPC gives, for a
getLogs over more than ``max_log_blocks`` blocks, and (``archive`` False)
the refusal of a full node that kept no state of old blocks.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

REFUSAL = {
    "code": -32600,
    "message": "You can make eth_getLogs requests with up to a {n} block range.",
}
NO_STATE = {"code": -32000, "message": "missing trie node (state is not available)"}


class RpcProxy:
    """Serves on 127.0.0.1 (``url``) until ``close``; ``calls`` holds every JSON-RPC call it saw."""

    def __init__(
        self,
        target: str,
        delay: float = 0.0,
        max_log_blocks: int | None = None,
        archive: bool = True,
    ) -> None:
        self.target, self.delay, self.max_log_blocks = target, delay, max_log_blocks
        self.archive = archive
        self.calls: list[dict[str, Any]] = []
        self.refused = 0
        self._client = httpx.Client(timeout=60)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = proxy.answer(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, body: bytes) -> bytes:
        time.sleep(self.delay)
        request = json.loads(body)
        calls = request if isinstance(request, list) else [request]
        self.calls += calls
        error = None
        if not isinstance(request, list) and self._too_wide(request):
            error = {**REFUSAL, "message": REFUSAL["message"].format(n=self.max_log_blocks)}
        elif not isinstance(request, list) and self._historical(request):
            error = NO_STATE
        if error is not None:
            self.refused += 1
            return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "error": error}).encode()
        headers = {"Content-Type": "application/json"}
        return self._client.post(self.target, content=body, headers=headers).content

    def _too_wide(self, call: dict[str, Any]) -> bool:
        if self.max_log_blocks is None or call.get("method") != "eth_getLogs":
            return False
        ask = call["params"][0]
        low, high = (_block(ask.get("fromBlock", "0x0")), _block(ask.get("toBlock", "latest")))
        return high - low + 1 > self.max_log_blocks

    def _historical(self, call: dict[str, Any]) -> bool:
        return (
            not self.archive
            and call.get("method") == "eth_getCode"
            and call["params"][1] not in ("latest", "pending")
        )

    def log_ranges(self) -> list[tuple[int, int]]:
        """The (fromBlock, toBlock) of every eth_getLogs it saw, refused or not."""
        return [
            (_block(c["params"][0]["fromBlock"]), _block(c["params"][0]["toBlock"]))
            for c in self.calls
            if c.get("method") == "eth_getLogs"
        ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


def _block(tag: Any) -> int:
    if isinstance(tag, int):
        return tag
    return 2**63 if tag in ("latest", "pending", "safe", "finalized") else int(tag, 16)
