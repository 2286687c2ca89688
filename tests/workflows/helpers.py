"""A DON of in-process workflow nodes with fresh keys, and a local HTTP server that records requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eth_account import Account

from vouch.cre_adapters import DonConfig
from vouch.cre_adapters._don import NodeSpec
from vouch.cre_adapters._signer import Signer
from vouch.cre_adapters.workflow import LocalLink, Target, WorkflowEngine, WorkflowNode

OWNER = "0x00000000000000000000000000000000000000AA"


def local_don(
    n: int = 4, secrets: dict[str, str] | None = None
) -> tuple[DonConfig, list[LocalLink]]:
    accounts = [Account.create() for _ in range(n)]
    nodes = [
        NodeSpec(name=f"node-{i + 1}", address=a.address, port=9100 + i, keystore=Path(f"k{i}"))
        for i, a in enumerate(accounts)
    ]
    don = DonConfig(f=(n - 1) // 3, chain_id=31337, forwarder=Account.create().address, nodes=nodes)
    links = [
        LocalLink(WorkflowNode(don, spec, Signer(bytes(a.key)), secrets=secrets))
        for spec, a in zip(nodes, accounts, strict=True)
    ]
    return don, links


def engine(module: Path, links: list[LocalLink], don: DonConfig, **kw: Any) -> WorkflowEngine:
    target = Target(chain_id=31337, forwarder=don.forwarder, owner=OWNER)
    return WorkflowEngine(don, links, module, target, **kw)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    url: str
    seen: list[Seen] = field(default_factory=list)


Answer = Callable[[Seen, int], tuple[int, bytes, float]]  # (status, body, delay seconds)


@contextmanager
def http_server(answer: Answer) -> Iterator[Server]:
    """A loopback HTTP server; ``answer(request, index)`` decides each response."""
    server_state = Server(url="")
    lock = threading.Lock()

    class H(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
            with lock:
                server_state.seen.append(seen)
                index = len(server_state.seen) - 1
            status, body, delay = answer(seen, index)
            if delay:
                import time

                time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass

        do_GET = do_POST = _any

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()


def price(value: int) -> bytes:
    return json.dumps({"price": value}).encode()
