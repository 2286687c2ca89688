"""The node's workflow endpoints, added to its one router (``cre_adapters._node_app._Routes``).

``POST /workflow/step``: run the callback to its next call (``StepAnswer``; a
callback's own failure is in the answer, 200). ``POST /workflow/sign``:
re-run it on the signed steps and sign its report (409 when it refuses).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ._messages import SignRequest, StepRequest

if TYPE_CHECKING:
    from .._node import OracleNode

Route = Callable[[bytes, str], Awaitable[tuple[int, bytes]]]


def workflow_routes(node: OracleNode) -> dict[str, Route]:
    """``{path: handler}`` for the node's router."""
    from .._node_app import _ms
    from .._node_log import event

    async def step(body: bytes, asker: str) -> tuple[int, bytes]:
        started = time.perf_counter()
        request = StepRequest.model_validate_json(body)
        answer = await asyncio.to_thread(node.workflows.step, request)
        done = "outcome" if answer.outcome is not None else "error" if answer.error else "step"
        event(
            "workflow-step",
            round=request.request_id,
            calls=len(request.steps),
            answer=done,
            ms=_ms(started),
        )
        return 200, answer.model_dump_json().encode()

    async def sign(body: bytes, asker: str) -> tuple[int, bytes]:
        started = time.perf_counter()
        request = SignRequest.model_validate_json(body)
        answer = await asyncio.to_thread(node.workflows.sign, request)
        event("workflow-signed", round=request.request_id, ms=_ms(started))
        return 200, json.dumps(answer).encode()

    return {"/workflow/step": step, "/workflow/sign": sign}
