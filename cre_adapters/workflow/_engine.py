"""The coordinator of a workflow execution: drive the nodes call by call, agree, sign, deliver, log.

Every node runs the callback (``WorkflowNode``); for each capability call the
coordinator collects each node's signed result, recomputes the declared
aggregation (``verifier._workflow_steps``), logs the step, and sends the
signed set back so every node continues from the same consensus. When the
callback ends, 2f+1 nodes must agree on the outcome; f+1 then re-run it on
the signed steps and sign the report it makes, which the forwarder delivers
to the receiver the callback named.

Log entries of one execution: ``trigger``, a ``capability`` per call, then
``report`` and ``submission`` (or ``finished`` when the callback wrote
nothing), or ``aborted``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vouch.verifier import (
    AttestationLog,
    ReportBody,
    ReportMetadata,
    encode_report,
    execution_id,
    recover_report_signer,
    report_context,
    report_digest,
)
from vouch.verifier._aggregate import CALL_FIELD, AggregationError
from vouch.verifier._canonical import canonical_json
from vouch.verifier._workflow_steps import StepError, step_consensus, verified_values

from .._delivery import ReportDelivery
from .._don import DonConfig, NodeSpec
from .._errors import ContractRevert, CreError
from .._rounds import round_id
from .._wire import NodeClient, WireError, WireTimeout
from ._api import Workflow
from ._errors import ConsensusRefused, Nondeterminism, WorkflowError
from ._loader import load_workflow
from ._messages import SignRequest, StepAnswer, StepRequest
from ._node import WorkflowNode, action_hash, workflow_id

EventSink = Callable[[str, dict[str, Any]], None]
MAX_CALLS = 64  # steps of one execution, whatever the limits (a runaway callback stops)


def _quiet(kind: str, data: dict[str, Any]) -> None:
    """Default event sink: print nothing."""


class NodeLink(Protocol):
    """How the coordinator reaches one node (in this process, or over HTTP)."""

    name: str
    address: str

    async def step(self, request: StepRequest) -> StepAnswer: ...

    async def sign(self, request: SignRequest) -> dict[str, Any]: ...


class LocalLink:
    """A node in this process (``vouch workflow simulate``): its callback runs in a thread."""

    def __init__(self, node: WorkflowNode) -> None:
        self.node = node
        self.name = node.spec.name
        self.address = node.spec.address

    async def step(self, request: StepRequest) -> StepAnswer:
        """Run the node's step in a worker thread."""
        return await asyncio.to_thread(self.node.step, request)

    async def sign(self, request: SignRequest) -> dict[str, Any]:
        """Ask the node to sign (refusals raise)."""
        return await asyncio.to_thread(self.node.sign, request)


class HttpLink:
    """A node process: ``POST /workflow/step`` and ``/workflow/sign`` on its URL."""

    def __init__(self, spec: NodeSpec, client: NodeClient, timeout: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.address = spec.address
        self.client = client
        self.timeout = timeout

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            return await self.client.post(self.spec.url + path, body, self.timeout)
        except WireTimeout:
            raise WorkflowError(f"{self.name}: no answer within {self.timeout}s") from None
        except WireError as exc:
            raise WorkflowError(f"{self.name}: unreachable at {self.spec.url} ({exc})") from None

    async def step(self, request: StepRequest) -> StepAnswer:
        """The node's step answer (its error, if it has one, is in the answer)."""
        status, body = await self._post("/workflow/step", request.model_dump_json().encode())
        if status != 200:
            raise WorkflowError(
                f"{self.name}: HTTP {status}: {body[:300].decode(errors='replace')}"
            )
        return StepAnswer.model_validate_json(body)

    async def sign(self, request: SignRequest) -> dict[str, Any]:
        """The node's signature, or its refusal as an error."""
        import json

        status, body = await self._post("/workflow/sign", request.model_dump_json().encode())
        data = json.loads(body) if body else {}
        if status != 200:
            raise WorkflowError(f"{self.name}: {data.get('error', status)}")
        return dict(data)


@dataclass
class Target:
    """Where reports go: the chain, its forwarder, the workflow's owner."""

    chain_id: int
    forwarder: str
    owner: str
    rpc_url: str | None = None


@dataclass
class ExecutionResult:
    """What one execution did."""

    execution_id: str
    status: str  # "reported" (signed, not sent), "delivered", "refused", "finished"
    steps: list[dict[str, Any]]
    outcome: dict[str, Any]
    report: dict[str, Any] | None = None
    submission: dict[str, Any] | None = None
    dissent: dict[str, str] = field(default_factory=dict)


class WorkflowEngine:
    """Runs executions of one workflow module on one DON.

    ``log``: where every entry goes (None: nowhere, a dry run). ``delivery``:
    a ``ReportDelivery`` whose forwarder sends the signed reports (None: sign
    only, no chain write).
    """

    def __init__(
        self,
        don: DonConfig,
        links: Sequence[NodeLink],
        module: Path,
        target: Target,
        *,
        log: AttestationLog | None = None,
        delivery: ReportDelivery | None = None,
        config: dict[str, Any] | None = None,
        limits: str = "default",
        on_event: EventSink = _quiet,
    ) -> None:
        self.don = don
        self.links = list(links)
        self.module = Path(module).resolve()
        self.workflow: Workflow
        self.workflow, self.sha256 = load_workflow(self.module)
        self.target = target
        self.log = log
        self.delivery = delivery
        self.config = dict(config or {})
        self.limits = limits
        self.emit = on_event
        self.workflow_id = workflow_id(target.owner, self.workflow.name)

    async def execute(
        self, handler: str | None = None, event: dict[str, Any] | None = None
    ) -> ExecutionResult:
        """One execution of ``handler`` for trigger ``event``.

        Raises:
            WorkflowError: fewer than 2f+1 nodes answered a step (each named
                with its error), a field's values do not meet its aggregation
                (``ConsensusRefused``, nodes named), nodes disagree on the call
                or the outcome (``Nondeterminism``, nodes named), or f+1 nodes
                did not sign. Logged as ``aborted`` first.
        """
        chosen = self.workflow.get(handler)
        event = dict(event or {})
        sequence = time.time_ns() // 1_000_000
        exec_id = execution_id(self.workflow_id, action_hash(chosen.name, event), sequence)
        request = StepRequest(
            request_id=round_id("c", exec_id, 1),
            module=str(self.module),
            sha256=self.sha256,
            handler=chosen.name,
            event=event,
            config=self.config,
            limits="cre" if self.limits == "cre" else "default",
            rpc_url=self.target.rpc_url,
        )
        self._append(
            exec_id,
            "trigger",
            {
                "workflow": self.workflow.name,
                "workflow_id": "0x" + self.workflow_id.hex(),
                "owner": self.target.owner,
                "handler": chosen.name,
                "module_sha256": self.sha256,
                "trigger": chosen.trigger.to_json(),
                "event": event,
                "request_id": request.request_id,
                **self._don_ref(),
            },
        )
        self.emit("triggered", {"handler": chosen.name, "execution": "0x" + exec_id.hex()})
        from ._errors import LimitExceeded
        from ._limits import NAMES, by_name

        budget = by_name(request.limits).execution_timeout
        try:
            try:
                return await asyncio.wait_for(self._run(exec_id, sequence, request), budget)
            except TimeoutError:
                raise LimitExceeded(
                    NAMES["execution_timeout"], budget, budget, "the execution time (s, at least)"
                ) from None
        except CreError as exc:
            payload: dict[str, Any] = {"error": type(exc).__name__, "detail": str(exc)}
            nodes = getattr(exc, "nodes", None)
            if nodes:
                payload["nodes"] = list(nodes)
            self._append(exec_id, "aborted", payload)
            raise

    async def _run(self, exec_id: bytes, sequence: int, request: StepRequest) -> ExecutionResult:
        steps: list[dict[str, Any]] = []
        dissent: dict[str, str] = {}
        for _ in range(MAX_CALLS + 1):
            request.steps = steps
            answers, failures = await self._ask(request)
            dissent.update(failures)
            outcomes = {a.node: a for a in answers if a.outcome is not None}
            stepped = {a.node: a for a in answers if a.step is not None}
            if outcomes and stepped:
                bigger = outcomes if len(outcomes) >= len(stepped) else stepped
                other = stepped if bigger is outcomes else outcomes
                if len(bigger) < self.don.quorum:
                    raise Nondeterminism(
                        f"nodes' callbacks diverged after {len(steps)} calls: "
                        f"{', '.join(sorted(outcomes))} finished, {', '.join(sorted(stepped))} made "
                        "another call (is the callback deterministic?)",
                        sorted(other),
                    )
                for name in other:
                    dissent[name] = "nondeterministic: its callback diverged"
                if bigger is outcomes:
                    stepped = {}
                else:
                    outcomes = {}
            if stepped:
                steps.append(
                    self._agree_step(exec_id, request.request_id, len(steps), stepped, dissent)
                )
                continue
            return await self._finish(exec_id, sequence, request, steps, outcomes, dissent)
        raise WorkflowError(f"the callback made more than {MAX_CALLS} capability calls")

    async def _ask(self, request: StepRequest) -> tuple[list[StepAnswer], dict[str, str]]:
        async def one(link: NodeLink) -> StepAnswer:
            return await link.step(request)

        results = await asyncio.gather(*(one(link) for link in self.links), return_exceptions=True)
        answers: list[StepAnswer] = []
        failures: dict[str, str] = {}
        kinds: set[str | None] = set()
        for link, result in zip(self.links, results, strict=True):
            if isinstance(result, BaseException):
                failures[link.name] = str(result)
                kinds.add(None)
            elif result.error is not None:
                failures[link.name] = result.error
                kinds.add(result.error_kind)
            else:
                answers.append(result)
        if len(answers) < self.don.quorum:
            named = "; ".join(f"{name}: {why}" for name, why in sorted(failures.items()))
            message = (
                f"{len(answers)} of {len(self.links)} nodes answered call {len(request.steps)}, "
                f"2f+1 = {self.don.quorum} needed: {named}"
            )
            raise _as_kind(kinds, message)
        return answers, failures

    def _agree_step(
        self,
        exec_id: bytes,
        request_id: str,
        index: int,
        stepped: dict[str, StepAnswer],
        dissent: dict[str, str],
    ) -> dict[str, Any]:
        by_call: dict[bytes, list[StepAnswer]] = defaultdict(list)
        for answer in stepped.values():
            assert answer.step is not None
            key = canonical_json(
                [
                    answer.step.get("step"),
                    answer.step.get("fields", {}).get(CALL_FIELD, {}).get("value"),
                ]
            )
            by_call[key].append(answer)
        groups = sorted(by_call.values(), key=len, reverse=True)
        main = groups[0]
        if len(main) < self.don.quorum:
            described = " vs ".join("{" + ", ".join(a.node for a in g) + "}" for g in groups)
            raise Nondeterminism(
                f"call {index}: the nodes' callbacks made different calls: {described}",
                [a.node for g in groups[1:] for a in g],
            )
        for g in groups[1:]:
            for a in g:
                dissent[a.node] = f"nondeterministic: another call {index}"
        first = main[0].step
        assert first is not None
        fields: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for answer in main:
            assert answer.step is not None
            for name, entry in answer.step["fields"].items():
                fields[name].append(entry)
        try:
            values = verified_values(request_id, index, fields, self.don.signers)
            _, consensus = step_consensus(values, first["aggregations"], self.don.f)
        except AggregationError as exc:
            raise ConsensusRefused(f"call {index} ({first['kind']}): {exc}", exc.nodes) from None
        except StepError as exc:
            raise WorkflowError(f"call {index}: {exc}") from None
        self._append(
            exec_id,
            "capability",
            {
                "request_id": request_id,
                "step": index,
                "kind": first["kind"],
                "call": first["descriptor"],
                "aggregations": first["aggregations"],
                "fields": dict(fields),
                "consensus": consensus,
            },
        )
        self.emit("consensus", {"step": index, "kind": first["kind"], "consensus": consensus})
        return {"fields": dict(fields)}

    async def _finish(
        self,
        exec_id: bytes,
        sequence: int,
        request: StepRequest,
        steps: list[dict[str, Any]],
        outcomes: dict[str, StepAnswer],
        dissent: dict[str, str],
    ) -> ExecutionResult:
        grouped: dict[bytes, list[str]] = defaultdict(list)
        for name, answer in outcomes.items():
            assert answer.outcome is not None
            key = canonical_json({k: answer.outcome.get(k) for k in ("report", "write", "result")})
            grouped[key].append(name)
        groups = sorted(grouped.values(), key=len, reverse=True)
        if len(groups[0]) < self.don.quorum:
            described = " vs ".join("{" + ", ".join(sorted(g)) + "}" for g in groups)
            raise Nondeterminism(
                f"the nodes' callbacks ended differently on the same consensus: {described}",
                [n for g in groups[1:] for n in g],
            )
        for g in groups[1:]:
            for name in g:
                dissent[name] = "nondeterministic: another outcome"
        outcome = dict(outcomes[groups[0][0]].outcome or {})
        outcome.pop("logs", None)
        result = ExecutionResult("0x" + exec_id.hex(), "finished", steps, outcome, dissent=dissent)
        for name, logs in ((n, outcomes[n].outcome or {}) for n in groups[0][:1]):
            for line in logs.get("logs", []):
                self.emit("log", {"node": name, "line": line})
        if outcome.get("write") is None:
            self._append(
                exec_id,
                "finished",
                {
                    "result": outcome.get("result"),
                    "report": outcome.get("report"),
                    "dissent": dissent,
                },
            )
            return result
        report = await self._sign(exec_id, sequence, request, outcome, steps)
        result.report, result.status = report, "reported"
        if self.delivery is None:
            return result
        submission = await self._deliver(exec_id, report, outcome["write"])
        result.submission, result.status = submission, submission["status"]
        return result

    async def _sign(
        self,
        exec_id: bytes,
        sequence: int,
        request: StepRequest,
        outcome: dict[str, Any],
        steps: list[dict[str, Any]],
    ) -> dict[str, Any]:
        report, write = outcome["report"], outcome["write"]
        meta = ReportMetadata(
            version=1,
            execution_id=exec_id,
            timestamp=int(time.time()),
            don_id=self.don.don_id,
            config_version=self.don.config_version,
            workflow_id=self.workflow_id,
            workflow_name=self.workflow.name,
            workflow_owner=self.target.owner,
            report_id=b"\x00\x01",
        )
        payload = bytes.fromhex(report["payload"][2:])
        body = ReportBody(
            chain_id=self.target.chain_id,
            receiver=write["receiver"],
            timestamp=meta.timestamp,
            action_hash=action_hash(request.handler, request.event),
            payload=payload,
        )
        raw = encode_report(meta, body)
        context = report_context(self.don.digest(self.target.chain_id), sequence)
        digest = report_digest(raw, context)
        sign_request = SignRequest(
            **request.model_dump(exclude={"steps"}),
            steps=steps,
            metadata=meta,
            chain_id=self.target.chain_id,
            receiver=write["receiver"],
            payload=report["payload"],
            sequence=sequence,
        )
        signed, refused = await self._signatures(sign_request, digest)
        needed = self.don.f + 1
        if len(signed) < needed:
            named = "; ".join(f"{n}: {why}" for n, why in sorted(refused.items()))
            raise WorkflowError(f"{len(signed)} report signatures, f+1 = {needed} needed: {named}")
        chosen = signed[:needed]
        entry = {
            "raw": "0x" + raw.hex(),
            "context": "0x" + context.hex(),
            "signatures": [s["signature"] for s in chosen],
            "signers": [s["signer"] for s in chosen],
            "receiver": write["receiver"],
            "gas_limit": write["gas_limit"],
            "abi_types": report["abi_types"],
            "values": report["values"],
            "refused": refused,
            **self._don_ref(),
        }
        self._append(exec_id, "report", entry)
        self.emit("signed", {"signers": entry["signers"], "receiver": write["receiver"]})
        return entry

    async def _signatures(
        self, request: SignRequest, digest: bytes
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        results = await asyncio.gather(
            *(link.sign(request) for link in self.links), return_exceptions=True
        )
        signed: list[dict[str, Any]] = []
        refused: dict[str, str] = {}
        for link, result in zip(self.links, results, strict=True):
            if isinstance(result, BaseException):
                refused[link.name] = str(result)
                continue
            try:
                signer = recover_report_signer(digest, bytes.fromhex(result["signature"][2:]))
            except Exception as exc:  # noqa: BLE001 - a bad signature is that node's problem
                refused[link.name] = f"unusable signature: {exc}"
                continue
            if signer.lower() != link.address.lower():
                refused[link.name] = f"signed by {signer}, not its address {link.address}"
                continue
            signed.append(result)
        return signed, refused

    async def _deliver(
        self, exec_id: bytes, report: dict[str, Any], write: dict[str, Any]
    ) -> dict[str, Any]:
        assert self.delivery is not None and self.log is not None
        delivery = self.delivery
        delivery.receiver = write["receiver"]
        delivery.gas_limit = int(write["gas_limit"])  # type: ignore[attr-defined]
        signatures = [bytes.fromhex(s[2:]) for s in report["signatures"]]
        raw, context = bytes.fromhex(report["raw"][2:]), bytes.fromhex(report["context"][2:])
        try:
            payload, _ = await delivery.submit(exec_id, raw, context, signatures)
        except ContractRevert:
            self._append(
                exec_id,
                "aborted",
                {"error": "ForwarderRejected", "detail": "the forwarder rejected the report"},
            )
            raise
        return payload

    def _don_ref(self) -> dict[str, Any]:
        return {
            "don_id": self.don.don_id,
            "config_version": self.don.config_version,
            "forwarder": self.target.forwarder,
            "chain_id": self.target.chain_id,
        }

    def _append(self, exec_id: bytes, kind: str, payload: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.append(exec_id, kind, payload)


def _as_kind(kinds: set[str | None], message: str) -> WorkflowError:
    """The nodes' common error (a quota breach, a capability failure...) as its own class."""
    from ._errors import CapabilityError, LimitExceeded, WorkflowDefinitionError

    known: dict[str, type[WorkflowError]] = {
        "LimitExceeded": LimitExceeded,
        "CapabilityError": CapabilityError,
        "WorkflowDefinitionError": WorkflowDefinitionError,
        "Nondeterminism": Nondeterminism,
        "ConsensusRefused": ConsensusRefused,
    }
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    cls = known.get(kind or "", WorkflowError)
    if cls is LimitExceeded:
        return LimitExceeded.from_message(message)
    return cls(message)


class GasLimitedDelivery(ReportDelivery):
    """A ``ReportDelivery`` to any receiver address, sending with the workflow's gas limit.

    ``receiver_abi``: the user's receiver's ABI, so its custom errors are decoded by name.
    """

    gas_limit: int | None = None
    receiver_abi: list[dict[str, Any]] | None = None

    def refusal_decoder(self) -> Any:
        """Vouch's contracts' errors and the user's receiver's own custom errors, by name."""
        from ..evm._writer import ErrorDecoder

        return ErrorDecoder([*self.artifacts.all_abis(), *(self.receiver_abi or [])])

    async def _gas(self, writer: Any, call: Any, raw: bytes) -> int | None:
        if self.gas_limit is not None:
            return self.gas_limit
        return await super()._gas(writer, call, raw)
