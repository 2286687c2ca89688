"""A node's side of a workflow execution: run the callback to its next call, or sign its report.

Used in every node process (``POST /workflow/step``, ``/workflow/sign``) and,
in one process, by ``vouch workflow simulate``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vouch.verifier import (
    Observation,
    ReportBody,
    encode_report,
    report_context,
    report_digest,
)
from vouch.verifier._workflow_steps import step_feed, trigger_action_hash
from vouch.verifier._workflow_steps import workflow_id as workflow_id

from .._don import DonConfig, NodeSpec
from .._errors import ConfigError, CreError, SigningRefused
from .._signer import Signer
from ._api import Workflow
from ._errors import LimitExceeded, WorkflowDefinitionError, WorkflowError
from ._limits import NAMES, by_name
from ._loader import allowed, load_workflow
from ._messages import SignRequest, StepAnswer, StepRequest
from ._runtime import NodeContext, Runtime, Suspended, field_ints

MAX_CLOCK_SKEW = 60


def action_hash(handler: str, event: Mapping[str, Any]) -> bytes:
    """The report's action hash: the trigger event that started the execution."""
    return trigger_action_hash(handler, event)


class WorkflowNode:
    """Runs workflow callbacks for one node, with its key, its secrets and its RPC URL."""

    def __init__(
        self,
        don: DonConfig,
        spec: NodeSpec,
        signer: Signer,
        *,
        secrets: Mapping[str, str] | None = None,
        secrets_loader: Callable[[], dict[str, str]] | None = None,
        rpc_url: str | None = None,
        allow_file: Path | None = None,
    ) -> None:
        self.allow_file = allow_file  # node processes: only registered modules run
        self.don = don
        self.spec = spec
        self._signer = signer
        fixed = dict(secrets or {})
        self._secrets = secrets_loader or (lambda: fixed)
        self.rpc_url = rpc_url or spec.source.rpc_url

    def _context(self, request: StepRequest) -> NodeContext:
        return NodeContext(
            name=self.spec.name,
            address=self.spec.address,
            signers=list(self.don.signers),
            f=self.don.f,
            rpc_url=self.rpc_url or request.rpc_url,
            secrets=self._secrets(),
            limits=by_name(request.limits),
            timeout_ceiling=request.limits == "cre",
        )

    def _runtime(self, request: StepRequest, executing: bool) -> tuple[Runtime, Workflow]:
        if self.allow_file is not None and not allowed(self.allow_file, request.sha256):
            raise WorkflowDefinitionError(
                f"{self.spec.name}: workflow module {request.sha256[:12]}… is not registered with "
                f"this DON ({self.allow_file}); `vouch workflow run` registers the module it runs"
            )
        workflow, _ = load_workflow(request.module, request.sha256)
        runtime = Runtime(
            config=dict(request.config),
            _node=self._context(request),
            _request_id=request.request_id,
            _steps=list(request.steps),
            _executing=executing,
        )
        return runtime, workflow

    def step(self, request: StepRequest) -> StepAnswer:
        """Replay the callback; execute and sign its next call, or return its outcome."""
        answer = StepAnswer(node=self.spec.name, address=self.spec.address)
        try:
            runtime, workflow = self._runtime(request, executing=True)
            result = workflow.get(request.handler).callback(runtime, dict(request.event))
        except Suspended as suspended:
            answer.step = self._signed_step(request.request_id, suspended)
            return answer
        except CreError as exc:
            answer.error, answer.error_kind = str(exc), type(exc).__name__
            return answer
        except Exception as exc:  # noqa: BLE001 - the user's callback: any error, named
            answer.error = f"{self.spec.name}: the callback raised {type(exc).__name__}: {exc}"
            answer.error_kind = "CallbackError"
            return answer
        answer.outcome = _outcome(runtime, result)
        size = len(json.dumps(answer.outcome["result"]).encode())
        limit = runtime._node.limits.execution_response
        if size > limit:
            answer.outcome = None
            answer.error = str(
                LimitExceeded(
                    NAMES["execution_response"], limit, size, "the callback's return (bytes)"
                )
            )
            answer.error_kind = "LimitExceeded"
        return answer

    def _signed_step(self, request_id: str, s: Suspended) -> dict[str, Any]:
        now = int(time.time())
        fields: dict[str, Any] = {}
        values = {**s.fields, "#call": s.call}
        for name, value_int in field_ints(s.fields, s.call).items():
            observation = Observation.model_construct(
                request_id=request_id,
                feed=step_feed(s.step, name),
                value=value_int,
                observed_at=now,
                node=self.spec.address,
            )
            signed = self._signer.observation(observation)
            fields[name] = {"signed": signed.model_dump(mode="json"), "value": values[name]}
        return {
            "step": s.step,
            "kind": s.kind,
            "descriptor": s.descriptor,
            "aggregations": s.aggregations,
            "fields": fields,
        }

    def sign(self, request: SignRequest) -> dict[str, Any]:
        """Re-run the whole callback on the DON's observations; sign its report if it is the one asked.

        Raises:
            SigningRefused: the callback ends differently (another payload or
                receiver, more or fewer calls), a step's observations fail a
                check, or the metadata is not this DON's.
        """
        meta = request.metadata
        if (meta.don_id, meta.config_version) != (self.don.don_id, self.don.config_version):
            raise SigningRefused(
                f"report names DON {meta.don_id} v{meta.config_version}, this node serves "
                f"DON {self.don.don_id} v{self.don.config_version}"
            )
        skew = abs(int(time.time()) - meta.timestamp)
        if skew > MAX_CLOCK_SKEW:
            raise SigningRefused(
                f"report timestamp {meta.timestamp} is {skew}s from this node's clock"
            )
        try:
            runtime, workflow = self._runtime(request, executing=False)
            if meta.workflow_name != workflow.name or bytes(meta.workflow_id) != workflow_id(
                meta.workflow_owner, workflow.name
            ):
                raise SigningRefused(
                    f"the metadata names workflow {meta.workflow_name!r} with another id than "
                    f"this module's {workflow.name!r}"
                )
            workflow.get(request.handler).callback(runtime, dict(request.event))
        except Suspended:
            raise SigningRefused("the callback executed a call while signing") from None
        except SigningRefused:
            raise
        except WorkflowError as exc:
            raise SigningRefused(str(exc)) from None
        except CreError as exc:
            raise SigningRefused(str(exc)) from None
        except Exception as exc:  # noqa: BLE001
            raise SigningRefused(f"the callback raised {type(exc).__name__}: {exc}") from None
        if runtime._index != len(request.steps):
            raise SigningRefused(
                f"the callback made {runtime._index} calls; the DON observed {len(request.steps)}"
            )
        report, write = runtime.reported, runtime.write
        if report is None or write is None:
            raise SigningRefused("the callback wrote no report (rt.evm.write)")
        if "0x" + report.payload.hex() != request.payload.lower():
            raise SigningRefused("the callback's report payload is not the one asked to sign")
        if write["receiver"].lower() != request.receiver.lower():
            raise SigningRefused(
                f"the callback writes to {write['receiver']}, not {request.receiver}"
            )
        try:
            context_digest = self.don.digest(request.chain_id)
        except ConfigError as exc:
            raise SigningRefused(str(exc)) from None
        body = ReportBody(
            chain_id=request.chain_id,
            receiver=request.receiver,
            timestamp=meta.timestamp,
            action_hash=action_hash(request.handler, request.event),
            payload=report.payload,
        )
        digest = report_digest(
            encode_report(meta, body), report_context(context_digest, request.sequence)
        )
        signature = self._signer.report(digest)
        return {
            "node": self.spec.name,
            "signer": self.spec.address,
            "signature": "0x" + signature.hex(),
            "digest": "0x" + digest.hex(),
        }


def _outcome(runtime: Runtime, result: Any) -> dict[str, Any]:
    return {
        "calls": runtime._index,
        "report": runtime.reported.to_json() if runtime.reported else None,
        "write": runtime.write,
        "result": _jsonable(result),
        "logs": runtime.logs,
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)[:200]
