"""The node's one router, in process: routes, errors, the extension point, where faults apply."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from eth_account import Account

from vouch.cre_adapters import DonConfig, FaultSpec, MockPriceSource, NodeSpec, OracleNode
from vouch.cre_adapters._node_app import MAX_BODY, Call, FaultGate, NodeRouter, _Routes


def make_node() -> OracleNode:
    keys = [Account.create() for _ in range(4)]
    specs = [
        NodeSpec(name=f"node-{i + 1}", address=k.address, port=9200 + i, keystore="k")
        for i, k in enumerate(keys)
    ]
    don = DonConfig(f=1, chain_id=31337, forwarder=Account.create().address, nodes=specs)
    return OracleNode(don, specs[0], bytes(keys[0].key), MockPriceSource(7, 1))


def call(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """One request through the ASGI app; its status and JSON answer."""
    sent: list[dict[str, Any]] = []
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [],
        "client": ("127.0.0.1", 5),
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def router_of(node: OracleNode) -> NodeRouter:
    router = NodeRouter()
    _Routes(node).install(router)
    return router


def test_unknown_paths_wrong_methods_and_oversized_bodies_are_named() -> None:
    router = router_of(make_node())
    assert call(router, "POST", "/nowhere")[0] == 404
    status, answer = call(router, "GET", "/observe")
    assert status == 405 and "GET /observe" in answer["error"]
    status, answer = call(router, "POST", "/observe", b"x" * (MAX_BODY + 1))
    assert status == 413 and str(MAX_BODY) in answer["error"]
    status, answer = call(router, "POST", "/observe", b'{"feed": "ETH/USD"}')
    assert status == 422 and "request_id" in answer["error"]


def test_a_new_endpoint_is_one_handler_and_one_add() -> None:
    node = make_node()
    router = router_of(node)

    async def rounds(call_: Call) -> tuple[int, bytes]:
        return 200, json.dumps({"rounds": node.rounds, "asker": call_.asker}).encode()

    router.add("POST", "/workflows/rounds", rounds, protocol=True)
    status, answer = call(router, "POST", "/workflows/rounds")
    assert status == 200 and answer == {"rounds": 0, "asker": "127.0.0.1:5"}
    with pytest.raises(ValueError, match="has a handler already"):
        router.add("POST", "/observe", rounds)


def test_flaky_applies_to_protocol_routes_only_and_admin_always_answers() -> None:
    node = make_node()
    router = router_of(node)
    app = FaultGate(router, node)
    node.set_fault(FaultSpec(mode="flaky", error_rate=1.0))
    body = b'{"request_id": "r1", "feed": "ETH/USD"}'
    assert call(app, "POST", "/observe", body)[0] == 500  # a protocol route
    assert call(app, "GET", "/health")[0] == 200  # not one
    status, answer = call(app, "GET", "/admin/fault")  # no token configured: refused, but answers
    assert status == 403 and "admin is disabled" in answer["error"]
