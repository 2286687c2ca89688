"""The coordinator: asks every node over HTTP, checks every answer, never trusts one node."""

from __future__ import annotations

import asyncio
import time
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

from ._consensus import consistent_subset
from ._don import DonConfig, NodeSpec
from ._errors import NodeError, QuorumNotReached
from ._node import observation_age_problem
from ._protocol import ObserveRequest, SettlementSignRequest, SignResponse

T = TypeVar("T")
Pick = Callable[[list[T]], list[T] | None]


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
        """Collect 2f+1 valid, fresh, mutually consistent signed observations from distinct nodes.

        Each node is asked twice (when ``don.echo``) and must give the same signed
        answer both times; observations older than ``don.max_observation_age``
        are stale; the set returned lies within ``don.observation_band_bps`` of
        its own median (what every signing node re-checks).

        Raises:
            QuorumNotReached: naming every node that failed and why.
        """

        async def ask(client: httpx.AsyncClient, node: NodeSpec) -> SignedObservation:
            body = request.model_dump(mode="json")
            asks = 2 if self.don.echo else 1
            answers = await asyncio.gather(
                *(self._post(client, node, "/observe", body) for _ in range(asks))
            )
            signed = [_parse(node, SignedObservation, data) for data in answers]
            for one in signed:
                self._check_observation(node, request, one)
            if any(one != signed[0] for one in signed[1:]):
                values = sorted({one.observation.value for one in signed})
                raise NodeError(
                    node.name,
                    f"equivocated: signed different observations for one request ({values})",
                )
            return signed[0]

        stage = "collecting observations"
        got, valid, failures = await self._gather(ask, self._agree)
        if got is not None:
            return got
        if len(valid) >= self.don.quorum:
            raise self._disagreement(stage, valid, failures)
        raise QuorumNotReached(stage, self.don.quorum, len(valid), failures)

    def _agree(self, got: list[SignedObservation]) -> list[SignedObservation] | None:
        values = [o.observation.value for o in got]
        picked = consistent_subset(values, self.don.quorum, self.don.observation_band_bps)
        return None if picked is None else [got[i] for i in picked]

    async def sign(self, request: SettlementSignRequest, digest: bytes) -> list[SignResponse]:
        """Collect exactly f+1 valid signatures over ``digest`` from distinct nodes.

        Raises:
            QuorumNotReached: if fewer than f+1 nodes signed the expected digest.
        """
        needed = self.don.f + 1

        async def ask(client: httpx.AsyncClient, node: NodeSpec) -> SignResponse:
            data = await self._post(
                client, node, "/sign/settlement", request.model_dump(mode="json")
            )
            answer = _parse(node, SignResponse, data)
            self._check_signature(node, digest, answer)
            return answer

        def first(got: list[SignResponse]) -> list[SignResponse] | None:
            return got[:needed] if len(got) >= needed else None

        got, valid, failures = await self._gather(ask, first)
        if got is None:
            raise QuorumNotReached("collecting report signatures", needed, len(valid), failures)
        return got

    async def _gather(
        self, ask: Callable[[httpx.AsyncClient, NodeSpec], Coroutine[Any, Any, T]], pick: Pick[T]
    ) -> tuple[list[T] | None, list[T], dict[str, str]]:
        """Ask every node at once; stop as soon as ``pick`` finds enough valid answers.

        Returns the picked answers (None if they never sufficed), all valid
        answers, and node name -> failure.
        """
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
                        continue
                    chosen = pick(results)
                    if chosen is not None:
                        return chosen, results, failures
            finally:
                for task in tasks:
                    task.cancel()
        return None, results, failures

    def _disagreement(
        self, stage: str, results: list[SignedObservation], failures: dict[str, str]
    ) -> QuorumNotReached:
        """Enough valid observations, but no 2f+1 agree: name the nodes outside the largest group.

        When f+1 or more nodes lie, the coordinator cannot tell which side is
        honest; it can only refuse, and name who disagreed with the largest group.
        """
        values = [r.observation.value for r in results]
        names = {node.address: node.name for node in self.don.nodes}
        owners = [names.get(r.observation.node, r.observation.node) for r in results]
        band = self.don.observation_band_bps
        group: list[int] = []
        for size in range(len(values), 0, -1):
            group = consistent_subset(values, size, band) or []
            if group:
                break
        camp = ", ".join(sorted(owners[i] for i in group))
        for i, name in enumerate(owners):
            if i not in group:
                failures[name] = (
                    f"observed {values[i]}, more than {band} bps away from the "
                    f"largest agreeing group ({camp})"
                )
        return QuorumNotReached(
            f"{stage}: no 2f+1 observations agree within {band} bps",
            self.don.quorum,
            len(group),
            failures,
        )

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
        problem = observation_age_problem(obs.observed_at, int(time.time()), self.don)
        if problem:
            raise NodeError(node.name, problem)

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
