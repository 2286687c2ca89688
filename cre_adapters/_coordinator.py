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

from vouch.verifier import (
    SignatureError,
    SignedObservation,
    recover_observation_signer,
    recover_report_signer,
)

from ._consensus import consistent_subset, within_band
from ._don import DonConfig, NodeSpec
from ._errors import CAUSES, NodeError, QuorumNotReached
from ._node import observation_age_problem
from ._protocol import ObserveRequest, ReportSignRequest, SettlementSignRequest, SignResponse
from ._rounds import earlier_round
from ._signer import address_bytes, observation_signer
from ._transport import Transport, open_client
from ._wire import WireError, WireTimeout

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Pick = Callable[[list[T]], list[T] | None]


@dataclass(frozen=True)
class Observed:
    """A checked signed observation, who gave it, and how long the node took to answer (ms)."""

    signed: SignedObservation
    node: str
    latency_ms: float


@dataclass(frozen=True)
class Absent:
    """A configured node whose answer is not in a stage's set, and why (``cause``: see CAUSES)."""

    node: str
    address: str
    cause: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """The ``absent`` item of an observations or report entry."""
        return {
            "node": self.node,
            "address": self.address,
            "cause": self.cause,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Evidence:
    """Validly signed answers of one node that were not used, and what they show."""

    node: str
    address: str
    cause: str
    observations: tuple[SignedObservation, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``evidence`` item of an observations entry."""
        return {
            "node": self.node,
            "address": self.address,
            "cause": self.cause,
            "observations": [o.model_dump(mode="json") for o in self.observations],
        }


@dataclass
class Round:
    """What the coordinator saw in one stage: the set it took, who is absent and why, evidence."""

    observed: list[Observed]
    absent: list[Absent]
    evidence: list[Evidence]

    def log_fields(self) -> dict[str, Any]:
        """``absent`` and ``evidence``, as an observations entry carries them."""
        return {
            "absent": [a.to_json() for a in self.absent],
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass
class _Gathered:
    chosen: list[Any] | None
    valid: list[Any]
    failures: dict[str, NodeError]
    pending: list[str]
    unasked: list[str]


class Coordinator:
    """Drives one round against a DON: collect 2f+1 observations, then f+1 report signatures.

    Args:
        don: the DON to talk to.
        timeout: the deadline of each stage (observations, then signatures) in seconds:
            a node asked late (after another failed) gets only what is left of it.
        client: open connections to reuse across rounds (a ``Transport``: ``HttpxClient``
            by default, ``NodeClient`` opted in); None opens and closes them per stage,
            or per ``connected()`` block (``open_client``).
        hedge_after: seconds after which nodes held in reserve are asked too.
        spare: nodes asked at once beyond the 2f+1 (observations) or f+1
            (signatures) a stage needs; the rest are held in reserve and
            asked when an answer fails, disagrees, or ``hedge_after`` passes.
    """

    def __init__(
        self,
        don: DonConfig,
        timeout: float = 5.0,
        client: Transport | None = None,
        hedge_after: float = 0.25,
        spare: int = 0,
    ) -> None:
        self.don = don
        self.timeout = timeout
        self.client = client
        self.hedge_after = min(hedge_after, timeout)
        self.spare = spare
        self._turn = 0
        self.last_round: Round | None = None
        self.last_signing: list[Absent] = []

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[Coordinator]:
        """Keep connections to the nodes open for the rounds run inside the block."""
        if self.client is not None:
            yield self
            return
        async with open_client(self.don) as client:
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

        See ``observe_round``; this returns the observations only (the whole
        round stays in ``last_round``).
        """
        return (await self.observe_round(request, numeric=numeric)).observed

    async def observe_round(self, request: ObserveRequest, *, numeric: bool = True) -> Round:
        """One observation stage: the set, every absent node and why, and the signed evidence.

        2f+1 nodes are asked first (a different first node every round), the
        others when one fails or disagrees. Each node is asked twice at once
        (when ``don.echo``), as two askers on two connections, and must give
        both the same signed answer; observations older than
        ``don.max_observation_age`` are stale; the set returned lies within
        ``don.observation_band_bps`` of its own median (what every signing
        node re-checks). With ``numeric=False`` (categorical values for
        identical/mode consensus) the band does not apply: the first 2f+1
        valid answers are returned and the aggregation mode decides.

        Raises:
            QuorumNotReached: naming every node that failed, its cause and why.
        """
        body = request.model_dump_json().encode()
        asks = 2 if self.don.echo else 1

        async def ask(client: Transport, node: NodeSpec) -> Observed:
            started = time.perf_counter()
            answers = await self._post_concurrently(client, node, "/observe", body, asks)
            latency = (time.perf_counter() - started) * 1000
            signed = [_parse(node, SignedObservation, a) for a in dict.fromkeys(answers)]
            for one in signed:
                self._check_signed(node, one)
            if len(signed) > 1:
                values = [o.observation.value for o in signed]
                raise NodeError(
                    node.name,
                    f"equivocated: signed different observations for one round ({values})",
                    "equivocation",
                    signed,
                )
            self._check_observation(node, request, signed[0])
            return Observed(signed[0], node.name, round(latency, 3))

        self._turn += 1
        start = self._turn % len(self.don.nodes)
        order = self.don.nodes[start:] + self.don.nodes[:start]
        stage = "collecting observations"
        self.last_round = None
        gathered = await self._gather(
            ask, self._agree if numeric else self._first, order, self.don.quorum + self.spare
        )
        if gathered.chosen is None:
            if len(gathered.valid) >= self.don.quorum:
                raise self._disagreement(stage, [o.signed for o in gathered.valid], gathered)
            raise QuorumNotReached(stage, self.don.quorum, len(gathered.valid), *_split(gathered))
        self.last_round = self._round(gathered, numeric)
        return self.last_round

    def _round(self, gathered: _Gathered, numeric: bool) -> Round:
        """The round's record: who is absent (and why) and the signed answers left out."""
        chosen: list[Observed] = gathered.chosen or []
        by_name = {node.name: node for node in self.don.nodes}
        absent: list[Absent] = []
        evidence: list[Evidence] = []
        for name, error in gathered.failures.items():
            absent.append(Absent(name, by_name[name].address, error.cause, error.reason))
            if error.evidence:
                evidence.append(
                    Evidence(name, by_name[name].address, error.cause, tuple(error.evidence))
                )
        taken = {o.node for o in chosen}
        values = [o.signed.observation.value for o in chosen]
        band = self.don.observation_band_bps
        for extra in gathered.valid:
            if extra.node in taken:
                continue
            address = by_name[extra.node].address
            if numeric and not within_band([*values, extra.signed.observation.value], band):
                detail = f"observed {extra.signed.observation.value}, outside {band} bps of the set"
                absent.append(Absent(extra.node, address, "out-of-band", detail))
                evidence.append(Evidence(extra.node, address, "out-of-band", (extra.signed,)))
            else:
                absent.append(Absent(extra.node, address, "unused", CAUSES["unused"]))
        for name in gathered.pending:
            absent.append(Absent(name, by_name[name].address, "late", CAUSES["late"]))
        for name in gathered.unasked:
            absent.append(Absent(name, by_name[name].address, "not-asked", CAUSES["not-asked"]))
        order = {node.name: i for i, node in enumerate(self.don.nodes)}
        absent.sort(key=lambda a: order[a.node])
        evidence.sort(key=lambda e: order[e.node])
        return Round(chosen, absent, evidence)

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
        The nodes that did not sign, and why, stay in ``last_signing``.

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

        async def ask(client: Transport, node: NodeSpec) -> SignResponse:
            answer = _parse(node, SignResponse, await self._post(client, node, path, body))
            self._check_signature(node, digest, answer)
            return answer

        def first(got: list[SignResponse]) -> list[SignResponse] | None:
            return got[:needed] if len(got) >= needed else None

        order = sorted(
            self.don.nodes,
            key=lambda n: observers.index(n.address) if n.address in observers else len(observers),
        )
        self.last_signing = []
        gathered = await self._gather(ask, first, order, needed + self.spare)
        if gathered.chosen is None:
            raise QuorumNotReached(
                "collecting report signatures", needed, len(gathered.valid), *_split(gathered)
            )
        signed = {a.node for a in gathered.chosen}
        by_name = {node.name: node for node in self.don.nodes}
        self.last_signing = [
            Absent(name, by_name[name].address, error.cause, error.reason)
            for name, error in gathered.failures.items()
        ] + [
            Absent(a.node, by_name[a.node].address, "unused", CAUSES["unused"])
            for a in gathered.valid
            if a.node not in signed and a.node in by_name
        ]
        return gathered.chosen

    async def _gather(
        self,
        ask: Callable[[Transport, NodeSpec], Coroutine[Any, Any, T]],
        pick: Pick[T],
        order: list[NodeSpec],
        width: int,
    ) -> _Gathered:
        """Ask nodes concurrently; stop as soon as ``pick`` finds enough valid answers.

        ``width`` nodes of ``order`` are asked at once; each failure brings in
        the next, so does an answer after which ``pick`` still finds nothing
        with no other question open, and after ``hedge_after`` seconds all the
        rest are asked. Returns the picked answers (None if they never
        sufficed), all valid answers, node name -> failure, the nodes still
        asked when the stage ended and those never asked.
        """
        waiting = list(order)
        failures: dict[str, NodeError] = {}
        results: list[T] = []
        async with _client(self.client, self.don) as client:
            running: dict[asyncio.Task[T], str] = {}

            def launch(count: int) -> None:
                for node in waiting[:count]:
                    running[asyncio.create_task(ask(client, node))] = node.name
                del waiting[:count]

            def done(chosen: list[T] | None) -> _Gathered:
                late = list(running.values())
                unasked = [n.name for n in waiting]
                return _Gathered(chosen, results, failures, late, unasked)

            launch(width)
            loop = asyncio.get_running_loop()
            hedge = loop.time() + self.hedge_after
            deadline = loop.time() + self.timeout  # the whole stage's, not each node's
            try:
                while running:
                    now = loop.time()
                    if now >= deadline:
                        for name in running.values():
                            failures[name] = NodeError(
                                name, f"no answer within {self.timeout}s", "slow"
                            )
                        running.clear()
                        break
                    timeout = min(hedge, deadline) - now if waiting else deadline - now
                    finished, _ = await asyncio.wait(
                        running, timeout=max(0.0, timeout), return_when="FIRST_COMPLETED"
                    )
                    if not finished:
                        if waiting and loop.time() >= hedge:
                            launch(len(waiting))
                        continue
                    for task in finished:
                        running.pop(task)
                        try:
                            results.append(task.result())
                        except NodeError as exc:
                            failures[exc.node] = exc
                            launch(1)
                            continue
                        chosen = pick(results)
                        if chosen is not None:
                            return done(chosen)
                    if not running:
                        launch(1)  # the answers so far do not suffice: ask one more
            finally:
                for task in running:
                    task.cancel()  # an answer nobody waits for; its connection is closed
        return done(None)

    def _disagreement(
        self, stage: str, results: list[SignedObservation], gathered: _Gathered
    ) -> QuorumNotReached:
        """Enough valid observations, but no 2f+1 agree: name the nodes outside the largest group.

        When f+1 or more nodes lie, the coordinator cannot tell which side is
        honest; it can only refuse, and name who disagreed with the largest group.
        """
        failures, causes = _split(gathered)
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
                causes[name] = "out-of-band"
        return QuorumNotReached(
            f"{stage}: no 2f+1 observations agree within {band} bps",
            self.don.quorum,
            len(group),
            failures,
            causes,
        )

    async def _post(self, client: Transport, node: NodeSpec, path: str, body: bytes) -> bytes:
        try:
            status, answer = await client.post(node.url + path, body, self.timeout)
        except WireTimeout:
            raise NodeError(node.name, f"no answer within {self.timeout}s", "slow") from None
        except WireError as exc:
            raise NodeError(node.name, f"unreachable at {node.url} ({exc})", "down") from None
        if status != 200:
            message, cause = _message(answer)
            raise NodeError(
                node.name,
                f"HTTP {status}: {message}",
                cause or ("refused" if status == 409 else "error"),
            )
        return answer

    async def _post_concurrently(
        self, client: Transport, node: NodeSpec, path: str, body: bytes, count: int
    ) -> list[bytes]:
        """``body`` posted ``count`` times at once, each on its own connection (its own asker).

        A slow node costs its delay once; an equivocator, consistent per asker,
        shows two askers two answers.
        """
        if count == 1:
            return [await self._post(client, node, path, body)]
        tasks = [asyncio.ensure_future(self._post(client, node, path, body)) for _ in range(count)]
        try:
            return [await task for task in tasks]
        finally:
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: a second failure is not worth a warning
                task.cancel()

    def _check_signed(self, node: NodeSpec, signed: SignedObservation) -> None:
        """The observation names this node and carries its key's valid signature."""
        obs = signed.observation
        if obs.node != node.address:
            raise NodeError(
                node.name, f"observation names {obs.node}, not its key {node.address}", "wrong-key"
            )
        try:
            signer = observation_signer(signed)
        except SignatureError as exc:
            raise NodeError(node.name, f"bad signature: {exc}", "bad-signature") from None
        if signer != address_bytes(node.address):
            _expect_signer(node, lambda: recover_observation_signer(signed))  # names the signer

    def _check_observation(
        self, node: NodeSpec, request: ObserveRequest, signed: SignedObservation
    ) -> None:
        """A validly signed observation (``_check_signed``) of this round, fresh."""
        obs = signed.observation
        if obs.feed != request.feed:
            raise NodeError(node.name, "observation is for another feed", "malformed")
        if obs.request_id != request.request_id:
            earlier = earlier_round(obs.request_id, request.request_id)
            if earlier is not None:
                raise NodeError(node.name, f"answered with {earlier}", "earlier-attempt", [signed])
            raise NodeError(node.name, "observation is for another request", "malformed")
        problem = observation_age_problem(obs.observed_at, int(time.time()), self.don)
        if problem:
            raise NodeError(node.name, problem, "stale", [signed])

    def _check_signature(self, node: NodeSpec, digest: bytes, answer: SignResponse) -> None:
        if answer.digest.lower() != "0x" + digest.hex():
            raise NodeError(
                node.name, f"signed digest {answer.digest}, expected 0x{digest.hex()}", "refused"
            )
        signature = bytes.fromhex(answer.signature.removeprefix("0x"))
        _expect_signer(node, lambda: recover_report_signer(digest, signature))


def _split(gathered: _Gathered) -> tuple[dict[str, str], dict[str, str]]:
    """Node -> reason and node -> cause of a stage's failures."""
    failures = {name: error.reason for name, error in gathered.failures.items()}
    causes = {name: error.cause for name, error in gathered.failures.items()}
    return failures, causes


@contextlib.asynccontextmanager
async def _client(shared: Transport | None, don: DonConfig) -> AsyncIterator[Transport]:
    if shared is not None:
        yield shared
        return
    async with open_client(don) as client:
        yield client


def _expect_signer(node: NodeSpec, recover: Callable[[], str]) -> None:
    try:
        signer = recover()
    except SignatureError as exc:
        raise NodeError(node.name, f"bad signature: {exc}", "bad-signature") from None
    if signer != node.address:
        raise NodeError(
            node.name, f"signature recovers to {signer}, not its key {node.address}", "wrong-key"
        )


def _parse(node: NodeSpec, model: type[M], data: bytes) -> M:
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise NodeError(
            node.name, f"malformed answer: {exc.error_count()} invalid fields", "malformed"
        ) from None


def _message(body: bytes) -> tuple[str, str | None]:
    """A node's error answer: its message and the cause it names (if one of CAUSES)."""
    try:
        data = json.loads(body)
        cause = data.get("cause")
        text = str(data.get("error", body.decode(errors="replace")))[:300]
        return text, cause if cause in CAUSES else None
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:300], None
