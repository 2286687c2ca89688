"""The coordinator: asks every node over HTTP, checks every answer, never trusts one node."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
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
        timeout: seconds to wait for each node's answer (the round's deadline per stage).
        client: an open client to reuse across rounds (keeps connections alive);
            None opens one per stage.
        hedge_after: seconds after which nodes held in reserve are asked too.
    """

    def __init__(
        self,
        don: DonConfig,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
        hedge_after: float = 0.25,
    ) -> None:
        self.don = don
        self.timeout = timeout
        self.client = client
        self.hedge_after = min(hedge_after, timeout)

    async def observe(
        self, request: ObserveRequest, *, numeric: bool = True
    ) -> list[SignedObservation]:
        """Collect 2f+1 valid, fresh, mutually consistent signed observations from distinct nodes.

        Each node is asked twice (when ``don.echo``) and must give the same signed
        answer both times; observations older than ``don.max_observation_age``
        are stale; the set returned lies within ``don.observation_band_bps`` of
        its own median (what every signing node re-checks). With
        ``numeric=False`` (categorical values for identical/mode consensus)
        the band does not apply: the first 2f+1 valid answers are returned and
        the aggregation mode decides.

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
        got, valid, failures = await self._gather(ask, self._agree if numeric else self._first)
        if got is not None:
            return got
        if len(valid) >= self.don.quorum:
            raise self._disagreement(stage, valid, failures)
        raise QuorumNotReached(stage, self.don.quorum, len(valid), failures)

    def _first(self, got: list[SignedObservation]) -> list[SignedObservation] | None:
        return got[: self.don.quorum] if len(got) >= self.don.quorum else None

    def _agree(self, got: list[SignedObservation]) -> list[SignedObservation] | None:
        values = [o.observation.value for o in got]
        picked = consistent_subset(values, self.don.quorum, self.don.observation_band_bps)
        return None if picked is None else [got[i] for i in picked]

    async def sign(self, request: SettlementSignRequest, digest: bytes) -> list[SignResponse]:
        """Collect exactly f+1 valid signatures over ``digest`` from distinct nodes.

        Asks f+1 nodes first (those whose observations made the set, fastest
        first); every failure brings in the next node, and after
        ``hedge_after`` seconds without enough signatures every node is asked.

        Raises:
            QuorumNotReached: if fewer than f+1 nodes signed the expected digest.
        """
        needed = self.don.f + 1
        body = request.model_dump(mode="json")

        async def ask(client: httpx.AsyncClient, node: NodeSpec) -> SignResponse:
            data = await self._post(client, node, "/sign/settlement", body)
            answer = _parse(node, SignResponse, data)
            self._check_signature(node, digest, answer)
            return answer

        def first(got: list[SignResponse]) -> list[SignResponse] | None:
            return got[:needed] if len(got) >= needed else None

        observers = [o.observation.node for o in request.observations]
        order = sorted(
            self.don.nodes,
            key=lambda n: observers.index(n.address) if n.address in observers else len(observers),
        )
        got, valid, failures = await self._gather(ask, first, order, needed)
        if got is None:
            raise QuorumNotReached("collecting report signatures", needed, len(valid), failures)
        return got

    async def _gather(
        self,
        ask: Callable[[httpx.AsyncClient, NodeSpec], Coroutine[Any, Any, T]],
        pick: Pick[T],
        order: list[NodeSpec] | None = None,
        width: int | None = None,
    ) -> tuple[list[T] | None, list[T], dict[str, str]]:
        """Ask nodes concurrently; stop as soon as ``pick`` finds enough valid answers.

        ``width`` nodes of ``order`` (default: all) are asked at once; each
        failure brings in the next, and after ``hedge_after`` seconds all the
        rest are asked. Returns the picked answers (None if they never
        sufficed), all valid answers, and node name -> failure.
        """
        waiting = list(order or self.don.nodes)
        failures: dict[str, str] = {}
        results: list[T] = []
        async with _client(self.client, self.timeout) as client:
            running: dict[asyncio.Task[T], str] = {}

            def launch(count: int) -> None:
                for node in waiting[:count]:
                    running[asyncio.create_task(ask(client, node))] = node.name
                del waiting[:count]

            launch(width or len(waiting))
            hedge = asyncio.get_running_loop().time() + self.hedge_after
            try:
                while running:
                    timeout = max(0.0, hedge - asyncio.get_running_loop().time())
                    done, _ = await asyncio.wait(
                        running, timeout=timeout if waiting else None, return_when="FIRST_COMPLETED"
                    )
                    if not done:
                        launch(len(waiting))
                    for task in done:
                        running.pop(task)
                        try:
                            results.append(task.result())
                        except NodeError as exc:
                            failures[exc.node] = exc.reason
                            launch(1)
                            continue
                        chosen = pick(results)
                        if chosen is not None:
                            return chosen, results, failures
            finally:
                self._drop(running)
        return None, results, failures

    def _drop(self, stragglers: dict[asyncio.Task[Any], str]) -> None:
        """Stop waiting for answers no longer needed.

        On a shared client they are left to finish (cancelling a request
        mid-flight closes its kept-alive connection); otherwise cancelled.
        """
        for task in stragglers:
            if self.client is None:
                task.cancel()
            else:
                task.add_done_callback(_consume)

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
            response = await client.post(node.url + path, json=body, timeout=self.timeout)
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


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a late failure of an answer nobody waits for


@contextlib.asynccontextmanager
async def _client(
    shared: httpx.AsyncClient | None, timeout: float
) -> AsyncIterator[httpx.AsyncClient]:
    if shared is not None:
        yield shared
        return
    async with httpx.AsyncClient(timeout=timeout) as client:
        yield client


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
