"""The coordinator: asks every node over HTTP, checks every answer, never trusts one node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

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
from ._protocol import ObserveRequest, ReportSignRequest, SettlementSignRequest, SignResponse
from ._signer import address_bytes, observation_signer
from ._wire import NodeClient, WireError, WireTimeout

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Pick = Callable[[list[T]], list[T] | None]


@dataclass(frozen=True)
class Observed:
    """A checked signed observation, who gave it, and how long the node took to answer (ms)."""

    signed: SignedObservation
    node: str
    latency_ms: float


class Coordinator:
    """Drives one round against a DON: collect 2f+1 observations, then f+1 report signatures.

    Args:
        don: the DON to talk to.
        timeout: the deadline of each stage (observations, then signatures) in seconds:
            a node asked late (after another failed) gets only what is left of it.
        client: open connections to reuse across rounds (``NodeClient``);
            None opens and closes them per stage, or per ``connected()`` block.
        hedge_after: seconds after which nodes held in reserve are asked too.
        spare: nodes asked at once beyond the 2f+1 (observations) or f+1
            (signatures) a stage needs; the rest are held in reserve and
            asked when an answer fails, disagrees, or ``hedge_after`` passes.
    """

    def __init__(
        self,
        don: DonConfig,
        timeout: float = 5.0,
        client: NodeClient | None = None,
        hedge_after: float = 0.25,
        spare: int = 0,
    ) -> None:
        self.don = don
        self.timeout = timeout
        self.client = client
        self.hedge_after = min(hedge_after, timeout)
        self.spare = spare
        self._turn = 0

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[Coordinator]:
        """Keep connections to the nodes open for the rounds run inside the block."""
        if self.client is not None:
            yield self
            return
        async with NodeClient() as client:
            self.client = client
            try:
                yield self
            finally:
                self.client = None

    async def observe(
        self, request: ObserveRequest, *, numeric: bool = True
    ) -> list[SignedObservation]:
        """Collect 2f+1 valid, fresh, mutually consistent signed observations from distinct nodes.

        See ``observe_timed``; this returns the signed observations only.
        """
        return [o.signed for o in await self.observe_timed(request, numeric=numeric)]

    async def observe_timed(
        self, request: ObserveRequest, *, numeric: bool = True
    ) -> list[Observed]:
        """Collect 2f+1 valid, fresh, mutually consistent signed observations from distinct nodes.

        2f+1 nodes are asked first (a different first node every round), the
        others when one fails or disagrees. Each node is asked twice at once
        (when ``don.echo``) and must give the same signed answer both times;
        observations older than ``don.max_observation_age`` are stale; the set
        returned lies within ``don.observation_band_bps`` of its own median
        (what every signing node re-checks). With ``numeric=False``
        (categorical values for identical/mode consensus) the band does not
        apply: the first 2f+1 valid answers are returned and the aggregation
        mode decides.

        Raises:
            QuorumNotReached: naming every node that failed and why.
        """
        body = request.model_dump_json().encode()
        asks = 2 if self.don.echo else 1

        async def ask(client: NodeClient, node: NodeSpec) -> Observed:
            started = time.perf_counter()
            answers = await self._post_many(client, node, "/observe", body, asks)
            latency = (time.perf_counter() - started) * 1000
            signed = _parse(node, SignedObservation, answers[0])
            if any(other != answers[0] for other in answers[1:]):
                values = sorted(
                    {_parse(node, SignedObservation, a).observation.value for a in answers}
                )
                raise NodeError(
                    node.name,
                    f"equivocated: signed different observations for one request ({values})",
                )
            self._check_observation(node, request, signed)
            return Observed(signed, node.name, round(latency, 3))

        self._turn += 1
        start = self._turn % len(self.don.nodes)
        order = self.don.nodes[start:] + self.don.nodes[:start]
        stage = "collecting observations"
        got, valid, failures = await self._gather(
            ask, self._agree if numeric else self._first, order, self.don.quorum + self.spare
        )
        if got is not None:
            return got
        if len(valid) >= self.don.quorum:
            raise self._disagreement(stage, [o.signed for o in valid], failures)
        raise QuorumNotReached(stage, self.don.quorum, len(valid), failures)

    def _first(self, got: list[Observed]) -> list[Observed] | None:
        return got[: self.don.quorum] if len(got) >= self.don.quorum else None

    def _agree(self, got: list[Observed]) -> list[Observed] | None:
        values = [o.signed.observation.value for o in got]
        picked = consistent_subset(values, self.don.quorum, self.don.observation_band_bps)
        return None if picked is None else [got[i] for i in picked]

    async def sign(
        self, request: SettlementSignRequest | ReportSignRequest, digest: bytes
    ) -> list[SignResponse]:
        """Collect exactly f+1 valid signatures over ``digest`` from distinct nodes.

        Asks f+1 nodes first (those whose observations made the set, fastest
        first); every failure brings in the next node, and after
        ``hedge_after`` seconds without enough signatures every node is asked.
        A ``SettlementSignRequest`` goes to ``/sign/settlement``, a
        ``ReportSignRequest`` (any aggregation mode) to ``/sign/report``.

        Raises:
            QuorumNotReached: if fewer than f+1 nodes signed the expected digest.
        """
        needed = self.don.f + 1
        body = request.model_dump_json().encode()
        if isinstance(request, SettlementSignRequest):
            path, observers = "/sign/settlement", [o.observation.node for o in request.observations]
        else:
            path = "/sign/report"
            observers = [o.observation.node for o in request.fields[0].observations]

        async def ask(client: NodeClient, node: NodeSpec) -> SignResponse:
            answer = _parse(node, SignResponse, await self._post(client, node, path, body))
            self._check_signature(node, digest, answer)
            return answer

        def first(got: list[SignResponse]) -> list[SignResponse] | None:
            return got[:needed] if len(got) >= needed else None

        order = sorted(
            self.don.nodes,
            key=lambda n: observers.index(n.address) if n.address in observers else len(observers),
        )
        got, valid, failures = await self._gather(ask, first, order, needed + self.spare)
        if got is None:
            raise QuorumNotReached("collecting report signatures", needed, len(valid), failures)
        return got

    async def _gather(
        self,
        ask: Callable[[NodeClient, NodeSpec], Coroutine[Any, Any, T]],
        pick: Pick[T],
        order: list[NodeSpec],
        width: int,
    ) -> tuple[list[T] | None, list[T], dict[str, str]]:
        """Ask nodes concurrently; stop as soon as ``pick`` finds enough valid answers.

        ``width`` nodes of ``order`` are asked at once; each failure brings in
        the next, so does an answer after which ``pick`` still finds nothing
        with no other question open, and after ``hedge_after`` seconds all the
        rest are asked. Returns the picked answers (None if they never
        sufficed), all valid answers, and node name -> failure.
        """
        waiting = list(order)
        failures: dict[str, str] = {}
        results: list[T] = []
        async with _client(self.client) as client:
            running: dict[asyncio.Task[T], str] = {}

            def launch(count: int) -> None:
                for node in waiting[:count]:
                    running[asyncio.create_task(ask(client, node))] = node.name
                del waiting[:count]

            launch(width)
            loop = asyncio.get_running_loop()
            hedge = loop.time() + self.hedge_after
            deadline = loop.time() + self.timeout  # the whole stage's, not each node's
            try:
                while running:
                    now = loop.time()
                    if now >= deadline:
                        for name in running.values():
                            failures[name] = f"no answer within {self.timeout}s"
                        break
                    timeout = min(hedge, deadline) - now if waiting else deadline - now
                    done, _ = await asyncio.wait(
                        running, timeout=max(0.0, timeout), return_when="FIRST_COMPLETED"
                    )
                    if not done:
                        if waiting and loop.time() >= hedge:
                            launch(len(waiting))
                        continue
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
                    if not running:
                        launch(1)  # the answers so far do not suffice: ask one more
            finally:
                for task in running:
                    task.cancel()  # an answer nobody waits for; its connection is closed
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

    async def _post(self, client: NodeClient, node: NodeSpec, path: str, body: bytes) -> bytes:
        return (await self._post_many(client, node, path, body, 1))[0]

    async def _post_many(
        self, client: NodeClient, node: NodeSpec, path: str, body: bytes, count: int
    ) -> list[bytes]:
        try:
            answers = await client.post_many(node.url + path, body, count, self.timeout)
        except WireTimeout:
            raise NodeError(node.name, f"no answer within {self.timeout}s") from None
        except WireError as exc:
            raise NodeError(node.name, f"unreachable at {node.url} ({exc})") from None
        for status, answer in answers:
            if status != 200:
                raise NodeError(node.name, f"HTTP {status}: {_message(answer)}")
        return [answer for _, answer in answers]

    def _check_observation(
        self, node: NodeSpec, request: ObserveRequest, signed: SignedObservation
    ) -> None:
        obs = signed.observation
        if (obs.request_id, obs.feed) != (request.request_id, request.feed):
            raise NodeError(node.name, "observation is for another request or feed")
        if obs.node != node.address:
            raise NodeError(node.name, f"observation names {obs.node}, not its key {node.address}")
        try:
            signer = observation_signer(signed)
        except SignatureError as exc:
            raise NodeError(node.name, f"bad signature: {exc}") from None
        if signer != address_bytes(node.address):
            _expect_signer(node, lambda: recover_observation_signer(signed))  # names the signer
        problem = observation_age_problem(obs.observed_at, int(time.time()), self.don)
        if problem:
            raise NodeError(node.name, problem)

    def _check_signature(self, node: NodeSpec, digest: bytes, answer: SignResponse) -> None:
        if answer.digest.lower() != "0x" + digest.hex():
            raise NodeError(node.name, f"signed digest {answer.digest}, expected 0x{digest.hex()}")
        signature = bytes.fromhex(answer.signature.removeprefix("0x"))
        _expect_signer(node, lambda: recover_report_signer(digest, signature))


@contextlib.asynccontextmanager
async def _client(shared: NodeClient | None) -> AsyncIterator[NodeClient]:
    if shared is not None:
        yield shared
        return
    async with NodeClient() as client:
        yield client


def _expect_signer(node: NodeSpec, recover: Callable[[], str]) -> None:
    try:
        signer = recover()
    except SignatureError as exc:
        raise NodeError(node.name, f"bad signature: {exc}") from None
    if signer != node.address:
        raise NodeError(node.name, f"signature recovers to {signer}, not its key {node.address}")


def _parse(node: NodeSpec, model: type[M], data: bytes) -> M:
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise NodeError(
            node.name, f"malformed answer: {exc.error_count()} invalid fields"
        ) from None


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", body.decode(errors="replace")))[:300]
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:300]
