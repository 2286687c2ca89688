"""The coordinator: asks every node over HTTP, checks every answer, never trusts one node."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from verifier import (
    SignatureError,
    SignedObservation,
    recover_observation_signer,
    recover_report_signer,
)

from ._don import DonConfig, NodeSpec
from ._errors import NodeError, QuorumNotReached
from ._protocol import ObserveRequest, SettlementSignRequest, SignResponse

T = TypeVar("T")


class Coordinator:
    """Drives one round against a DON: collect 2f+1 observations, then f+1 report signatures.

    Args:
        don: the DON to talk to.
        timeout: seconds to wait for each node's answer.
    """

    def __init__(self, don: DonConfig, timeout: float = 5.0) -> None:
        self.don = don
        self.timeout = timeout

    async def observe(self, request: ObserveRequest) -> list[SignedObservation]:
        """Collect valid signed observations from at least 2f+1 distinct nodes.

        Raises:
            QuorumNotReached: if fewer than 2f+1 nodes answered with a valid observation.
        """

        async def ask(client: httpx.AsyncClient, node: NodeSpec) -> SignedObservation:
            data = await self._post(client, node, "/observe", request.model_dump(mode="json"))
            signed = _parse(node, SignedObservation, data)
            self._check_observation(node, request, signed)
            return signed

        return await self._gather("collecting observations", self.don.quorum, ask)

    async def sign(self, request: SettlementSignRequest, digest: bytes) -> list[SignResponse]:
        """Collect exactly f+1 valid signatures over ``digest`` from distinct nodes.

        Raises:
            QuorumNotReached: if fewer than f+1 nodes signed the expected digest.
        """

        async def ask(client: httpx.AsyncClient, node: NodeSpec) -> SignResponse:
            data = await self._post(
                client, node, "/sign/settlement", request.model_dump(mode="json")
            )
            answer = _parse(node, SignResponse, data)
            self._check_signature(node, digest, answer)
            return answer

        return await self._gather("collecting report signatures", self.don.f + 1, ask)

    async def _gather(
        self,
        stage: str,
        needed: int,
        ask: Callable[[httpx.AsyncClient, NodeSpec], Coroutine[Any, Any, T]],
    ) -> list[T]:
        failures: dict[str, str] = {}
        results: list[T] = []
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            tasks = [asyncio.create_task(ask(client, node)) for node in self.don.nodes]
            try:
                for done in asyncio.as_completed(tasks):
                    try:
                        results.append(await done)
                    except NodeError as exc:
                        failures[exc.node] = exc.reason
                    if len(results) >= needed:
                        return results[:needed]
            finally:
                for task in tasks:
                    task.cancel()
        raise QuorumNotReached(stage, needed, len(results), failures)

    async def _post(
        self, client: httpx.AsyncClient, node: NodeSpec, path: str, body: object
    ) -> object:
        try:
            response = await client.post(node.url + path, json=body)
        except httpx.TimeoutException:
            raise NodeError(node.name, f"no answer within {self.timeout}s") from None
        except httpx.TransportError as exc:
            raise NodeError(
                node.name, f"unreachable at {node.url} ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            raise NodeError(node.name, f"HTTP {response.status_code}: {_message(response)}")
        try:
            return response.json()
        except ValueError:
            raise NodeError(node.name, "answered with a body that is not JSON") from None

    def _check_observation(
        self, node: NodeSpec, request: ObserveRequest, signed: SignedObservation
    ) -> None:
        obs = signed.observation
        if (obs.request_id, obs.feed) != (request.request_id, request.feed):
            raise NodeError(node.name, "observation is for another request or feed")
        _expect_signer(node, lambda: recover_observation_signer(signed))

    def _check_signature(self, node: NodeSpec, digest: bytes, answer: SignResponse) -> None:
        if answer.digest.lower() != "0x" + digest.hex():
            raise NodeError(node.name, f"signed digest {answer.digest}, expected 0x{digest.hex()}")
        signature = bytes.fromhex(answer.signature.removeprefix("0x"))
        _expect_signer(node, lambda: recover_report_signer(digest, signature))


def _expect_signer(node: NodeSpec, recover: Callable[[], str]) -> None:
    try:
        signer = recover()
    except SignatureError as exc:
        raise NodeError(node.name, f"bad signature: {exc}") from None
    if signer != node.address:
        raise NodeError(node.name, f"signature recovers to {signer}, not its key {node.address}")


def _parse(node: NodeSpec, model: type[T], data: object) -> T:
    try:
        return model.model_validate(data)  # type: ignore[attr-defined, no-any-return]
    except ValidationError as exc:
        raise NodeError(
            node.name, f"malformed answer: {exc.error_count()} invalid fields"
        ) from None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))[:300]
    except ValueError:
        return response.text[:300]
